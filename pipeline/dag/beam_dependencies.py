"""No TFX "ephemeral" package for the Beam steps: their workers already have TFX and the project's code.

TFX 1.16's BaseBeamExecutor, whenever a step has Beam pipeline arguments and none of them names a dependency
(--extra_package, --setup_file, --requirements_file, --sdk_container_image), copies TFX's whole installed package
(52 MB) into a new temp folder, builds an sdist of it and adds it as --extra_package, so that remote Beam workers
could pip-install TFX at start-up. It never deletes the folder: about 2 s and 52 MB per Beam step, so each `make run`
left ~0.4 GB in /tmp and a test suite ~3 GB (it once filled this machine's disk). Here that package is never needed:
DirectRunner runs in this process, and every other runner this project offers runs its SDK workers from an image or
environment that already has TFX and the project's code (docs/beam-runners.md); installing an sdist of TFX with
all its requirements from PyPI at worker start-up would be slow at best and fails on workers without internet.
TFX has no setting for this, hence the module attribute: the executor looks the function up at call time.
"""

from __future__ import annotations

from typing import List


def _as_given(beam_pipeline_args: List[str]) -> List[str]:
    return list(beam_pipeline_args)


def skip_tfx_package() -> None:
    """Makes TFX's Beam executors in this process use the Beam pipeline arguments as given."""
    from tfx.utils import dependency_utils

    dependency_utils.make_beam_dependency_flags = _as_given
