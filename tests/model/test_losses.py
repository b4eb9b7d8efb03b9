import keras
import numpy as np
import pytest

from model.build import NUM_AGES, THRESHOLD_AGES, GaussianLabelLoss, ModelConfig

AGES = np.arange(NUM_AGES)


def _peaked(centre: float, sigma: float = 3.0) -> np.ndarray:
    p = np.exp(-0.5 * ((AGES - centre) / sigma) ** 2)
    return p / p.sum()


def _kl(label: float, pred: np.ndarray, sigma: float = 2.0) -> float:
    target = np.exp(-0.5 * ((AGES - label) / sigma) ** 2)
    target /= target.sum()
    pred = np.clip(pred, 1e-7, 1.0)
    return float(np.sum(target * (np.log(np.clip(target, 1e-7, 1.0)) - np.log(pred))))


def _loss(loss, labels, preds) -> np.ndarray:
    y_true = np.asarray(labels, dtype="float32").reshape(-1, 1)
    y_pred = np.asarray(preds, dtype="float32")
    return np.asarray(loss.call(y_true, y_pred))


def test_without_the_threshold_term_it_is_the_label_distributions_kl():
    preds = [_peaked(17), _peaked(40)]
    got = _loss(GaussianLabelLoss(2.0), [16, 33], preds)
    np.testing.assert_allclose(got, [_kl(16, preds[0]), _kl(33, preds[1])], rtol=1e-4)


def test_the_threshold_term_is_the_cross_entropy_of_p_under_each_age():
    preds = [_peaked(19), _peaked(24), _peaked(30)]
    labels = [17, 22, 26]
    got = _loss(GaussianLabelLoss(2.0, threshold_weight=1.5), labels, preds)
    for label, pred, value in zip(labels, preds, got, strict=True):
        terms = []
        for limit in THRESHOLD_AGES:
            p = np.clip(pred[limit > AGES].sum(), 1e-6, 1 - 1e-6)
            terms.append(-np.log(p) if label < limit else -np.log(1 - p))
        assert value == pytest.approx(_kl(label, pred) + 1.5 * np.mean(terms), rel=1e-4)


def test_it_costs_more_to_put_a_minor_over_the_line_than_under_it_by_as_much():
    """A 17-year-old estimated 19 or 15: the KL is the same, the threshold term is not."""
    loss = GaussianLabelLoss(2.0, threshold_weight=1.0)
    over, under = _loss(loss, [17, 17], [_peaked(19), _peaked(15)])
    plain_over, plain_under = _loss(GaussianLabelLoss(2.0), [17, 17], [_peaked(19), _peaked(15)])
    assert plain_over == pytest.approx(plain_under, rel=1e-3)
    assert over > under + 0.2


def test_the_loss_round_trips_through_its_config():
    loss = GaussianLabelLoss(2.5, threshold_weight=0.7)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert (again.sigma, again.threshold_weight) == (2.5, 0.7)


def test_only_the_distribution_head_takes_a_threshold_loss():
    assert ModelConfig(backbone="mobilenet_v2", head="dldl", threshold_loss=1.0).threshold_loss
    with pytest.raises(ValueError, match="threshold_loss: only the dldl head"):
        ModelConfig(backbone="mobilenet_v2", head="regression", threshold_loss=1.0)
    with pytest.raises(ValueError, match="threshold_loss: -1"):
        ModelConfig(backbone="mobilenet_v2", head="dldl", threshold_loss=-1.0)
