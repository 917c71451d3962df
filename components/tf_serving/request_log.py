"""The request log's files: what the model server keeps of the requests it answered, and how anyone reads it back.

Each file is a TFRecord file of `tensorflow.serving.PredictionLog` protos (tensorflow_serving/apis/
prediction_log.proto), the format of TF Serving's warm-up file and of TFX's BulkInferrer: one record per logged
request, holding the request as the gRPC API takes it, the response as it was sent, and `log_metadata` (the model
spec with the version that answered, the sampling config, the time).

A file is named `<filename_prefix>-<UTC time it was opened>-<writer>-<sequence>.tfrecord` (a prefix ending in "/"
is a folder: the name starts with the time), so the names of one prefix sort by time, across the replicas writing
there too (`<writer>` is the host and process). It is written under a hidden temporary name and appears under its
own name only once it is closed and whole: renamed in place on a local path, uploaded in one piece from a local
temporary file on an object store (s3://, gs://), where an object is never visible half-written. A reader that
lists the closed files (`log_files`) therefore never meets a partial one.

The local server writes them (pipeline/serving/request_log.py); a pipeline step reads them (`log_files`, `read`,
`examples`). Files go through tf.io.gfile on object stores, so every file system TensorFlow knows works.
"""

from __future__ import annotations

import calendar
import dataclasses
import os
import posixpath
import re
import socket
import struct
import time
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import google_crc32c  # the CRC-32C of TFRecord (a C extension; a dependency of TFX's Cloud Storage client)

from components.runtime.storage import is_uri, join

SUFFIX = ".tfrecord"
TEMP_SUFFIX = ".tmp"
# <UTC time>-<writer>-<sequence>.tfrecord after the prefix; the time has a fixed width, so names sort by it.
_NAME = re.compile(r"^(?P<time>\d{8}T\d{6}\.\d{6}Z)-(?P<writer>[A-Za-z0-9.-]+)-(?P<seq>\d{6,})"
                   + re.escape(SUFFIX) + "$")
_TIME_FORMAT = "%Y%m%dT%H%M%S"


def _split(prefix: str) -> Tuple[str, str]:
    """(folder, the start of every file name in it) of a filename prefix."""
    join_split = os.path.split if not is_uri(prefix) else posixpath.split
    folder, base = join_split(prefix)
    return folder, (base + "-" if base else "")


def writer_id() -> str:
    """This process, in file names: host and process id (letters, digits, dots and dashes only)."""
    host = re.sub(r"[^A-Za-z0-9.-]+", "-", socket.gethostname()).strip("-.") or "host"
    return f"{host}-{os.getpid()}"


def file_name(prefix: str, opened_at: float, writer: str, sequence: int) -> str:
    """The path of the log file opened at `opened_at` (seconds since the epoch) by `writer`."""
    folder, start = _split(prefix)
    stamp = time.strftime(_TIME_FORMAT, time.gmtime(opened_at)) + f".{int(opened_at * 1e6) % 1_000_000:06d}Z"
    name = f"{start}{stamp}-{writer}-{sequence:06d}{SUFFIX}"
    return join(folder, name)


def opened_at(path: str) -> Optional[float]:
    """The time a log file was opened, from its name (None for another name)."""
    match = _NAME.match(_after_prefix(path))
    if not match:
        return None
    return calendar.timegm(time.strptime(match["time"][:15], _TIME_FORMAT)) + int(match["time"][16:22]) / 1e6


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _after_prefix(path: str) -> str:
    """A log file's name without the prefix's part: <time>-<writer>-<sequence>.tfrecord (its last such part)."""
    name = _basename(path)
    found = re.search(r"\d{8}T\d{6}\.\d{6}Z-", name)
    return name[found.start():] if found else name


def log_files(prefix: str) -> List[str]:
    """The closed log files of `prefix`, oldest first ([] when there are none or the folder does not exist).
    Temporary files of files being written are never listed."""
    folder, start = _split(prefix)
    if not is_uri(prefix):
        try:
            names = os.listdir(folder or ".")
        except (FileNotFoundError, NotADirectoryError):
            return []
    else:
        import tensorflow as tf

        try:
            names = [n.rstrip("/") for n in tf.io.gfile.listdir(folder)]
        except tf.errors.NotFoundError:
            return []
    found = [n for n in names if n.startswith(start) and _NAME.match(n[len(start):])]
    return [join(folder, n) for n in sorted(found)]


def temp_name(final: str, spool_dir: Optional[str] = None) -> str:
    """Where a file is written until it is closed: hidden beside its final name on a local path (a rename then
    publishes it), in `spool_dir` for an object store (uploaded whole from there)."""
    name = "." + _basename(final) + TEMP_SUFFIX
    if not is_uri(final):
        return os.path.join(os.path.dirname(final), name)
    return os.path.join(spool_dir or "/tmp", name)


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF  # TFRecord's mask, as TensorFlow's crc32c::Mask


def tfrecord(data: bytes) -> bytes:
    """One record framed as TFRecord frames it: its length (uint64, little-endian) and that length's masked CRC-32C,
    the data and its masked CRC-32C. Byte for byte what tf.io.TFRecordWriter writes (the tests compare them)."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", _masked_crc(length)) + data + struct.pack("<I", _masked_crc(data))


class LogFile:
    """One log file being written: records go to its temporary file; `publish` closes it and gives it its name.
    Errors are the file system's (OSError; tf.errors.OpError from an object store): the caller counts the records
    lost.

    Written with Python's buffered file and `tfrecord` rather than tf.io.TFRecordWriter, because the server's writer
    thread runs beside the threads that answer requests: a TFRecordWriter.write call per record (a call into
    TensorFlow's C++ that can give up the GIL and must take it back) cost the server more of its throughput than
    this does (benchmarks/results.md, "Request logging"). A buffered write holds the GIL for a copy and gives it up
    once per BUFFER_BYTES written."""

    BUFFER_BYTES = 64 * 1024

    def __init__(self, prefix: str, opened: float, writer: str, sequence: int, spool_dir: Optional[str] = None):
        self.name = file_name(prefix, opened, writer, sequence)
        self.temp = temp_name(self.name, spool_dir)
        self.opened = opened
        self.records = 0
        self.bytes = 0
        os.makedirs(os.path.dirname(self.temp) or ".", exist_ok=True)
        self._file = open(self.temp, "wb", buffering=self.BUFFER_BYTES)  # noqa: SIM115 - closed by publish/discard

    def write(self, record: bytes) -> None:
        framed = tfrecord(record)
        self._file.write(framed)
        self.records += 1
        self.bytes += len(framed)

    def publish(self) -> str:
        """Closes the file and makes it visible under its name, whole; returns the name."""
        self._file.flush()
        os.fsync(self._file.fileno())  # on disk before its name says it is whole, a crash of the machine included
        self._file.close()
        if not is_uri(self.name):
            os.replace(self.temp, self.name)  # rename(2): atomic in one folder
            return self.name
        import tensorflow as tf

        try:
            tf.io.gfile.copy(self.temp, self.name, overwrite=True)  # one object, visible once whole
        finally:
            os.remove(self.temp)
        return self.name

    def discard(self) -> None:
        """Closes and deletes the temporary file (after an error: its records are lost)."""
        try:
            self._file.close()
        except OSError:  # the buffer's last write fails again: the file is being thrown away for that
            pass
        try:
            os.remove(self.temp)
        except OSError:
            pass


def _size(path: str) -> int:
    if not is_uri(path):
        return os.path.getsize(path)
    import tensorflow as tf

    return tf.io.gfile.stat(path).length


def _remove(path: str) -> None:
    if not is_uri(path):
        os.remove(path)
    else:
        import tensorflow as tf

        tf.io.gfile.remove(path)


def prune(prefix: str, keep_seconds: float = 0.0, keep_bytes: int = 0, now: Optional[float] = None) -> List[str]:
    """Deletes the closed files of `prefix` opened more than `keep_seconds` ago, then the oldest ones while all of
    them together are over `keep_bytes` (0: no limit of that kind); returns the deleted paths. Files deleted by
    someone else meanwhile (another replica pruning the same prefix) are skipped."""
    if not keep_seconds and not keep_bytes:
        return []
    now = time.time() if now is None else now
    deleted, kept = [], []
    for path in log_files(prefix):
        if keep_seconds and (opened_at(path) or now) < now - keep_seconds:
            deleted.append(path)
        else:
            kept.append(path)
    if keep_bytes:
        sizes = []
        for path in kept:
            try:
                sizes.append(_size(path))
            except Exception:  # noqa: BLE001 - gone meanwhile
                sizes.append(0)
        total = sum(sizes)
        for path, size in zip(list(kept), sizes):
            if total <= keep_bytes:
                break
            deleted.append(path)
            total -= size
    removed = []
    for path in deleted:
        try:
            _remove(path)
            removed.append(path)
        except Exception:  # noqa: BLE001 - deleted by another replica, or the store refused: tried again next time
            pass
    return removed


# -- reading back ------------------------------------------------------------------------------------------------

def read(paths: Iterable[str]) -> Iterator:
    """The PredictionLog records of the files `paths`, in order (`log_files(prefix)` lists a prefix's)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    paths = list(paths)
    if not paths:
        return
    for record in tf.data.TFRecordDataset(paths):
        yield prediction_log_pb2.PredictionLog.FromString(record.numpy())


@dataclasses.dataclass
class LoggedExample:
    """One example of a logged request, flattened: what the model was asked and what it answered."""

    model: str
    version: int
    signature: str
    time: int  # seconds since the epoch, when the request was answered
    kind: str  # predict, classify, regress or multi_inference (the PredictionLog's log type without "_log")
    text: Optional[str]  # the example's text input or feature (None when the request has none by that name)
    outputs: Dict[str, object]  # predict: output name -> this example's value; classify: classes, scores; ...


def _text(value):
    """A string tensor's value as text (as the REST API answers it), kept as bytes when it is not UTF-8."""
    if isinstance(value, list):
        return [_text(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def _tensor_rows(proto):
    import tensorflow as tf

    return _text(tf.make_ndarray(proto).tolist())


def _example_texts(examples: Sequence, context, text_key: str) -> List[Optional[str]]:
    def text(example) -> Optional[str]:
        for source in (example, context):
            if source is not None and text_key in source.features.feature:
                values = source.features.feature[text_key].bytes_list.value
                return values[0].decode("utf-8", "replace") if values else ""
        return None
    return [text(e) for e in examples]


def _input_texts(input_proto, text_key: str) -> List[Optional[str]]:
    kind = input_proto.WhichOneof("kind")
    if kind == "example_list":
        return _example_texts(input_proto.example_list.examples, None, text_key)
    if kind == "example_list_with_context":
        with_context = input_proto.example_list_with_context
        return _example_texts(with_context.examples, with_context.context, text_key)
    return []


def _classifications(result) -> List[Dict[str, object]]:
    return [{"classes": [c.label for c in row.classes], "scores": [c.score for c in row.classes]}
            for row in result.classifications]


def examples(log, text_key: str = "text") -> List[LoggedExample]:
    """The examples of one PredictionLog, each with its text (the string input `text_key` of a predict request, the
    feature `text_key` of a classify/regress request's tf.Examples) and its answer."""
    kind = log.WhichOneof("log_type") or ""
    meta = log.log_metadata
    common = dict(model=meta.model_spec.name, version=meta.model_spec.version.value,
                  signature=meta.model_spec.signature_name, time=meta.timestamp_secs, kind=kind.replace("_log", ""))
    if kind == "predict_log":
        request, response = log.predict_log.request, log.predict_log.response
        texts = _tensor_rows(request.inputs[text_key]) if text_key in request.inputs else []
        outputs = {name: _tensor_rows(proto) for name, proto in sorted(response.outputs.items())}
        rows = max([len(texts)] + [len(v) for v in outputs.values() if isinstance(v, list)])
        texts = texts or [None] * rows
        return [LoggedExample(**common, text=texts[i], outputs={
            name: (values[i] if isinstance(values, list) and len(values) == rows else values)
            for name, values in outputs.items()}) for i in range(rows)]
    if kind == "classify_log":
        texts = _input_texts(log.classify_log.request.input, text_key)
        answers = _classifications(log.classify_log.response.result)
    elif kind == "regress_log":
        texts = _input_texts(log.regress_log.request.input, text_key)
        answers = [{"outputs": r.value} for r in log.regress_log.response.result.regressions]
    elif kind == "multi_inference_log":
        texts = _input_texts(log.multi_inference_log.request.input, text_key)
        answers = [{} for _ in texts]
        for result in log.multi_inference_log.response.results:
            name = result.model_spec.signature_name
            rows = (_classifications(result.classification_result) if result.HasField("classification_result")
                    else [{"outputs": r.value} for r in result.regression_result.regressions])
            for answer, row in zip(answers, rows):
                answer.update({f"{name}/{key}": value for key, value in row.items()})
    else:
        return []
    return [LoggedExample(**common, text=text, outputs=answer) for text, answer in zip(texts, answers)]
