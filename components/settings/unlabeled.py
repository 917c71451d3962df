"""`--unlabeled-data`'s settings, declared once for both steps that read the texts (components/module_files/
unlabeled.py): the masked-LM stage's Pretrainer and, with --distill-unlabeled, the Distiller. The front door sets
them; TFX's cache keys on them, so the digest makes changed files re-run a step. No TensorFlow here."""

from __future__ import annotations

import dataclasses
from typing import Optional

from components.settings.base import CustomConfigMixin, SettingsError, setting


@dataclasses.dataclass(frozen=True)
class UnlabeledTextSettings(CustomConfigMixin):
    """Where the unlabeled texts are and which of their files a step reads."""

    unlabeled_data: Optional[str] = setting(
        None, derived="--unlabeled-data: a folder of .csv files (the --text-column) and .txt files (one text per "
                      "line), or a request-log prefix, whose texts the step also reads; never the eval or test split")
    unlabeled_digest: str = setting("", derived="a digest of --unlabeled-data's file names, sizes and times, so "
                                                "changed files re-run the step (TFX's cache keys on settings)")
    unlabeled_until: str = setting("", derived="the newest request-log file of --unlabeled-data the front door "
                                               "digested: the step reads the files up to it ('' for a folder)")


def check_readers(given: bool, pretraining: bool, distill_unlabeled: bool, distilling: bool) -> None:
    """--unlabeled-data needs a step that reads it; --distill-unlabeled needs the texts and the Distiller."""
    if given and not pretraining and not distill_unlabeled:
        raise SettingsError("--unlabeled-data is read by the masked-LM stage and the Distiller: pass --pretrain-epochs "
                            "N (N > 0), or --distill-unlabeled with --student-layers N, too.")
    if distill_unlabeled and not distilling:
        raise SettingsError("--distill-unlabeled adds texts to the Distiller's transfer set: pass --student-layers N "
                            "(N > 0) too.")
    if distill_unlabeled and not given:
        raise SettingsError("--distill-unlabeled adds the teacher's answers on unlabeled texts: pass --unlabeled-data "
                            "with a folder of texts or a request-log prefix too.")
