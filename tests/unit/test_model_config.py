"""TF Serving's model config file as components/tf_serving/model_config.py reads it: the version policies, labels,
relative base paths and the refusals of a file that cannot be used."""

import pytest

from components.tf_serving import model_config


def config(policy: str = "", labels: str = "", base_path: str = "/srv/models/m") -> str:
    return (f'model_config_list {{ config {{ name: "m" base_path: "{base_path}" model_platform: "tensorflow" '
            f'{policy} {labels} }} }}')


@pytest.mark.parametrize("policy, served, latest", [
    ("", [9], 9),  # TF Serving's default: the latest version
    ("model_version_policy { latest { num_versions: 2 } }", [9, 5], 9),
    ("model_version_policy { specific { versions: 1 versions: 5 versions: 42 } }", [5, 1], 5),
    ("model_version_policy { specific { versions: 42 } }", [], None),
    ("model_version_policy { all {} }", [9, 5, 1], 9),
])
def test_policies_serve_what_tf_serving_serves(policy, served, latest):
    parsed = model_config.parse(config(policy), "models.config")["m"]
    assert parsed.served([1, 5, 9]) == served
    assert parsed.latest([1, 5, 9]) == latest


def test_labels_and_a_relative_base_path(tmp_path):
    text = config(labels='version_labels { key: "stable" value: 5 } version_labels { key: "canary" value: 9 }',
                  base_path="serving/m")
    parsed = model_config.parse(text, str(tmp_path / "models.config"))["m"]
    assert parsed.labels == {"stable": 5, "canary": 9}
    assert parsed.base_path == str(tmp_path / "serving" / "m")  # relative to the config file's folder


@pytest.mark.parametrize("text, message", [
    ("model_config_list { config { name: ", "is not a text ModelServerConfig"),
    ("", "lists no model"),
    ('model_config_list { config { name: "m" } }', "every model needs a name and a base_path"),
    (config().replace("} }", '} config { name: "m" base_path: "/x" } }'), "lists model 'm' twice"),
    (config().replace('"tensorflow"', '"tflite"'), "model_platform 'tflite' is not served here"),
    (config("model_version_policy { specific { } }"), "specific { versions } lists no version"),
])
def test_a_config_that_cannot_be_used_is_refused_naming_the_file(text, message):
    with pytest.raises(model_config.ConfigError, match="models.config") as refused:
        model_config.parse(text, "models.config")
    assert message in str(refused.value)
