"""The package's public API: every name it lists resolves, the heavy ones on first use."""

import subprocess
import sys

import model


def test_every_public_name_resolves() -> None:
    for name in model.__all__:
        assert getattr(model, name) is not None, name
    assert model.train_model.__module__ == "model.train"
    assert model.export_model.__module__ == "model.export"


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        model.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("no AttributeError")


def test_import_model_loads_neither_keras_nor_tensorflow() -> None:
    code = (
        "import sys, model\nprint(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
