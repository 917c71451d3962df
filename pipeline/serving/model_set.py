"""The models a server serves: one, from --serving-dir and --model-name, or those of a model config file
(--model-config-file, TF Serving's text ModelServerConfig), re-read every --model-config-poll-seconds.

A re-read config that changed is applied as TF Serving applies one: a new model starts loading, a model no longer
listed is unloaded, and a model whose policy or labels changed gets them at its next poll (components/tf_serving/
model_config.py reads the file, for the pipeline's BaselineLookup too). A config that no longer parses is reported
and ignored: the models keep serving under the last good one.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Callable, Dict, Optional

from components.tf_serving import model_config
from pipeline.serving import rest
from pipeline.serving.models import BatchingOptions, ModelRegistry

log = logging.getLogger("serve")


class ModelSet:
    def __init__(self, poll_seconds: float, batching: Optional[BatchingOptions],
                 on_batch: Optional[Callable[[str, str, int], None]] = None, config_poll_seconds: float = 0.0):
        self.poll_seconds, self.batching, self.on_batch = poll_seconds, batching, on_batch
        self.config_poll_seconds = config_poll_seconds  # 0: the config file is read once
        self.registries: Dict[str, ModelRegistry] = {}  # replaced whole on a change: readers need no lock
        self.config_file = ""
        self._config_text: Optional[str] = None
        self._started = False
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        # Told the policies each time they are applied (request logging follows each model's logging_config).
        self.on_apply: Optional[Callable[[Dict[str, model_config.ModelPolicy]], None]] = None

    @classmethod
    def single(cls, base_dir: str, name: str, poll_seconds: float, batching: Optional[BatchingOptions],
               on_batch=None, logging: Optional[model_config.RequestLogging] = None) -> "ModelSet":
        """`logging`: the model's request logging (serve.py's --request-log), as a config file's logging_config."""
        models = cls(poll_seconds, batching, on_batch)
        policy = model_config.default_policy(name, base_dir)
        models._apply({name: dataclasses.replace(policy, logging=logging) if logging else policy})
        return models

    @classmethod
    def from_config_file(cls, config_file: str, poll_seconds: float, batching: Optional[BatchingOptions],
                         on_batch=None, config_poll_seconds: float = 0.0) -> "ModelSet":
        """Raises model_config.ConfigError (one sentence naming the file) when the file cannot be used."""
        models = cls(poll_seconds, batching, on_batch, config_poll_seconds)
        models.config_file = config_file
        models._config_text = model_config.read_text(config_file)
        models._apply(model_config.parse(models._config_text, config_file))
        return models

    @property
    def names(self):
        return sorted(self.registries)

    @property
    def policies(self) -> Dict[str, model_config.ModelPolicy]:
        return {name: registry.policy for name, registry in self.registries.items()}

    def get(self, name: str) -> ModelRegistry:
        """The model's registry, or TF Serving's 404 for a model it does not serve."""
        registry = self.registries.get(name)
        if registry is None:
            raise rest.RestError(404, f"Servable not found for request: Latest({name}) (this server serves "
                                      f"{', '.join(self.names) or 'no model'})")
        return registry

    def _apply(self, policies: Dict[str, model_config.ModelPolicy]) -> None:
        old = self.registries
        new: Dict[str, ModelRegistry] = {}
        for name, policy in policies.items():
            registry = old.get(name)
            if registry is not None and registry.base_dir == policy.base_path:
                registry.set_policy(policy)
            else:
                registry = ModelRegistry(policy.base_path, name, self.poll_seconds, self.batching, policy,
                                         self.on_batch)
                if self._started:
                    registry.start()
                log.info("model %s: %s from %s", name, policy.describe(), policy.base_path)
            new[name] = registry
        self.registries = new
        for name, registry in old.items():
            if new.get(name) is not registry:
                registry.stop()
                log.info("model %s unloaded: no longer in %s", name, self.config_file or "the config")
        if self.on_apply:
            self.on_apply(policies)

    def reload_config(self) -> bool:
        """Re-reads the config file; applies it when it changed and parses. Returns whether it was applied."""
        if not self.config_file:
            return False
        try:
            text = model_config.read_text(self.config_file)
            if text == self._config_text:
                return False
            policies = model_config.parse(text, self.config_file)
        except model_config.ConfigError as e:
            log.warning("%s; serving on under the last good config", e)
            self._config_text = None if "cannot read" in str(e) else text  # report a bad edit once
            return False
        self._config_text = text
        self._apply(policies)
        log.info("re-read %s: serving %s", self.config_file, ", ".join(self.names))
        return True

    def start(self) -> None:
        self._started = True
        for registry in self.registries.values():
            registry.start()
        if self.config_file and self.config_poll_seconds > 0:
            def loop():
                while not self._stop.wait(self.config_poll_seconds):
                    try:
                        self.reload_config()
                    except Exception:  # noqa: BLE001 - a bad read must never stop the server
                        log.exception("re-reading %s failed", self.config_file)

            self._thread = threading.Thread(target=loop, name="model-config-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        for registry in self.registries.values():
            registry.stop()

