"""`upload`, `run` and `schedule`: what the client commands do, one function each."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import tempfile

from pipeline.kubeflow.client import (
    Kfp,
    check_source_args,
    find_pipeline,
    get_experiment,
    latest_version,
    name_filter,
    pipeline_source,
    run_options,
)
from pipeline.kubeflow.cron import normalize_cron
from pipeline.kubeflow.errors import ApiError, UserError
from pipeline.kubeflow.parameters import resolve_parameters
from pipeline.kubeflow.specs import load_platform_spec, load_spec, write_upload_file


def cmd_upload(args: argparse.Namespace) -> int:
    spec = load_spec(args.file)
    name = args.name or spec["pipelineInfo"]["name"]
    if not name.strip():
        raise UserError("--name must not be empty.")
    kfp = Kfp(args.host, args.namespace)
    with tempfile.TemporaryDirectory() as folder:
        path = write_upload_file(spec, folder, name, load_platform_spec(args.file))
        existing = find_pipeline(kfp, name)
        if existing is None:
            where = f"namespace {kfp.namespace}" if kfp.namespace else "this server"
            with kfp.call(f"uploading pipeline {name!r}",
                          conflict=f"a pipeline named {name!r} already exists outside {where} (another namespace, "
                                   "or shared) and cannot be seen or updated from here; pass another --name"):
                pipeline = kfp.client.upload_pipeline(path, pipeline_name=name, description=args.description,
                                                      namespace=kfp.namespace)
            version = latest_version(kfp, pipeline.pipeline_id)
            version_id = version.pipeline_version_id if version else None
            print(f"uploaded new pipeline {name!r}")
        else:
            digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
            version_name = args.version or f"{name}-{stamp}-{digest}"
            with kfp.call(f"uploading a new version of pipeline {name!r}",
                          conflict=f"pipeline {name!r} already has a version named {version_name!r}; pass another "
                                   "--version"):
                version = kfp.client.upload_pipeline_version(
                    path, version_name, pipeline_id=existing.pipeline_id, description=args.description)
            pipeline, version_id = existing, version.pipeline_version_id
            print(f"uploaded version {version_name!r} of pipeline {name!r}")
    print(f"pipeline id: {pipeline.pipeline_id}")
    print(f"version id:  {version_id or '(unknown)'}")
    page = f"pipelines/details/{pipeline.pipeline_id}" + (f"/version/{version_id}" if version_id else "")
    print(f"ui: {kfp.link(page)}")
    return 0


@contextlib.contextmanager
def run_source(args: argparse.Namespace):
    """What `run` and `schedule` share: the checked arguments (before connecting: a bad spec file or parameter sends
    no request), the KFP connection, what to run, its runtime parameters and run options. Yields (kfp, source,
    params, options); the spec file given to kfp.Client lives until the block ends."""
    spec = check_source_args(args)
    params = resolve_parameters(spec, args.param or []) if spec is not None else None
    options = run_options(args)
    kfp = Kfp(args.host, args.namespace)
    with tempfile.TemporaryDirectory() as folder:
        source = pipeline_source(kfp, args, folder, spec)
        if params is None:  # an uploaded pipeline: its parameters are known only now
            params = resolve_parameters(source.spec, args.param or [])
        if not options.get("pipeline_root") and source.spec.get("defaultPipelineRoot"):
            # The open-source backend takes a run's pipeline root from the run, else from the namespace's
            # kfp-launcher ConfigMap, never from the spec's defaultPipelineRoot (backend/src/v2/driver/root_dag.go
            # L97-113 at 2.17.0): without this, the run's TFX steps would get KFP's minio:// default.
            options["pipeline_root"] = source.spec["defaultPipelineRoot"]
        yield kfp, source, params, options


def cmd_run(args: argparse.Namespace) -> int:
    with run_source(args) as (kfp, source, params, options):
        experiment = get_experiment(kfp, args.experiment)
        run_name = args.run_name or \
            f"{source.spec['pipelineInfo']['name']} {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M:%S}"
        with kfp.call(f"starting a run of {source.label}"):
            run = kfp.client.run_pipeline(
                experiment.experiment_id, run_name, pipeline_package_path=source.package_path, params=params,
                pipeline_id=source.pipeline_id, version_id=source.version_id, **options)
    print(f"started run {run_name!r} in experiment {args.experiment!r}")
    print(f"run id: {run.run_id}")
    if args.param:
        print("parameters: " + ", ".join(args.param))
    print(f"ui: {kfp.link(f'runs/details/{run.run_id}')}")
    return 0



def find_recurring_run(kfp: Kfp, name_or_id: str):
    with kfp.call(f"looking up recurring run {name_or_id!r}"):
        response = kfp.client.list_recurring_runs(filter=name_filter(name_or_id), namespace=kfp.namespace,
                                                  page_size=10)
    found = [r for r in (response.recurring_runs or []) if r.display_name == name_or_id]
    if len(found) > 1:
        raise ApiError(f"several recurring runs are named {name_or_id!r} "
                       f"({', '.join(r.recurring_run_id for r in found)}); give the id.")
    if found:
        return found[0]
    try:
        with kfp.call(f"looking up recurring run {name_or_id!r}"):
            return kfp.client.get_recurring_run(name_or_id)
    except ApiError as e:
        if e.status in (400, 404):
            raise ApiError(f"no recurring run named or with id {name_or_id!r} on {kfp.host}"
                           f"{' in namespace ' + kfp.namespace if kfp.namespace else ''}.") from None
        raise


def cmd_schedule(args: argparse.Namespace) -> int:
    if args.cron is None:
        return _manage_schedule(args)
    cron = normalize_cron(args.cron)
    with run_source(args) as (kfp, source, params, options):
        name = args.name or f"{source.spec['pipelineInfo']['name']}-retraining"
        with kfp.call(f"looking up recurring run {name!r}"):
            response = kfp.client.list_recurring_runs(filter=name_filter(name), namespace=kfp.namespace)
        clash = [r for r in (response.recurring_runs or []) if r.display_name == name]
        if clash:
            raise ApiError(f"a recurring run named {name!r} already exists ({clash[0].recurring_run_id}); delete it "
                           "first (--delete) or pass another --name.")
        experiment = get_experiment(kfp, args.experiment)
        with kfp.call(f"creating recurring run {name!r}"):
            job = kfp.client.create_recurring_run(
                experiment.experiment_id, name, description=args.description, cron_expression=cron,
                max_concurrency=1, no_catchup=True, params=params, pipeline_package_path=source.package_path,
                pipeline_id=source.pipeline_id, version_id=source.version_id, enabled=not args.paused, **options)
    print(f"created recurring run {name!r} ({'paused' if args.paused else 'enabled'}): cron {cron!r} "
          "(seconds first), at most one run at a time, no catch-up of missed runs")
    print(f"recurring run id: {job.recurring_run_id}")
    if args.param:
        print("parameters: " + ", ".join(args.param))
    print(f"ui: {kfp.link(f'recurringrun/details/{job.recurring_run_id}')}")
    return 0


def _manage_schedule(args: argparse.Namespace) -> int:
    action, target = next((a, getattr(args, a)) for a in ("pause", "resume", "delete") if getattr(args, a))
    extra = [flag for flag, value in (("FILE", args.file), ("--pipeline-id", args.pipeline_id),
                                      ("--pipeline", args.pipeline), ("--param", args.param)) if value]
    if extra:
        raise UserError(f"--{action} takes only the recurring run's name or id; drop {', '.join(extra)}.")
    kfp = Kfp(args.host, args.namespace)
    job = find_recurring_run(kfp, target)
    verb = {"pause": "pausing", "resume": "resuming", "delete": "deleting"}[action]
    with kfp.call(f"{verb} recurring run {job.display_name!r} ({job.recurring_run_id})"):
        if action == "pause":
            kfp.client.disable_recurring_run(job.recurring_run_id)
        elif action == "resume":
            kfp.client.enable_recurring_run(job.recurring_run_id)
        else:
            kfp.client.delete_recurring_run(job.recurring_run_id)
    done = {"pause": "paused", "resume": "resumed", "delete": "deleted"}[action]
    print(f"{done} recurring run {job.display_name!r} ({job.recurring_run_id})")
    return 0
