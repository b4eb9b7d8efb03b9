"""The engines that run a model directory's age model: Keras, or OpenVINO on the IR built for it.

A runner takes a float32 batch ``(n, size, size, 3)`` of RGB pixels 0..255 and returns
``{"age": (n,), "dist": (n, 101)}`` as NumPy arrays (no ``dist`` for a regression head). Which
engine runs is the card's ``engine`` section (written by ``model.engine.build_engine``): its
``default``, ``precision`` and the SHA-256 of each engine file, checked before the file is used.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from model.errors import ModelDirectoryError, ModelError

log = logging.getLogger(__name__)

ENGINES = ("auto", "keras", "openvino")
OPENVINO_DIR = "openvino"
IR_FILE = f"{OPENVINO_DIR}/age_model.xml"
IR_WEIGHTS = f"{OPENVINO_DIR}/age_model.bin"
# OpenVINO's performance hint. THROUGHPUT, the batch split over the compiled model's optimal
# number of requests, measured about 1.2-1.4x the images/s of LATENCY for batches of 128 on 2
# AVX2 cores; on 2 cores with AVX-512 and VNNI, LATENCY (one request on every core) measured
# 1.1-1.4x THROUGHPUT's (README, "Inference engine").
HINTS = ("throughput", "latency")
PERFORMANCE_HINT = "throughput"
# Images per call of the Keras model: on 2 CPU cores the bundled model ran 1.3-1.5x the crops/s
# in calls of 16-32 images than in calls of 128 (64 crops and their mirror images), so a larger
# batch is cut into calls of this size.
KERAS_CALL_BATCH = 32


# OpenVINO set-up in this process: one thread at a time (see ``openvino_setup``).
_OPENVINO_SETUP = threading.RLock()
_openvino_bindings_ready = False


@contextmanager
def openvino_setup() -> Iterator[None]:
    """Hold this process's OpenVINO set-up lock, with the Python bindings' first use done.

    OpenVINO's Python bindings fill function-local statics (their numpy type tables) on first
    use, running Python code while the static's initialisation guard is held. Two threads that
    use them for the first time at once can deadlock: one holds the guard and waits for the GIL,
    the other holds the GIL and waits for the guard. A Dask worker whose face-finding threads
    started their first inference together hung that way until Dask replaced it. So models are
    read and compiled under this lock, and the first thread in a process to take it runs a
    one-operation model once (a uint8 input, a float32 output, through ``infer`` and through an
    ``AsyncInferQueue`` callback) before any other thread gets to use OpenVINO.
    """
    global _openvino_bindings_ready
    with _OPENVINO_SETUP:
        if not _openvino_bindings_ready:
            _first_use_of_bindings()
            _openvino_bindings_ready = True
        yield


def _first_use_of_bindings() -> None:
    import openvino as ov
    import openvino.opset13 as ops

    pixels = ops.parameter([1, 2, 2, 3], ov.Type.u8)
    network = ov.Model([ops.convert(pixels, ov.Type.f32)], [pixels], "first-use")
    compiled = ov.Core().compile_model(network, "CPU", {"INFERENCE_NUM_THREADS": 1})
    x = np.zeros((1, 2, 2, 3), np.uint8)
    compiled.create_infer_request().infer({0: x}).to_tuple()
    seen: list[np.ndarray] = []
    queue = ov.AsyncInferQueue(compiled, 1)
    queue.set_callback(lambda request, _: seen.append(request.get_output_tensor(0).data.copy()))
    queue.start_async({0: x})
    queue.wait_all()


def replace_dir(staging: Path, out: Path) -> None:
    """Put the finished ``staging`` folder in place of ``out``: the old one is moved aside
    first and removed last, so a failure leaves one of the two whole."""
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    staging.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class KerasRunner:
    """The Keras model under one ``tf.function``."""

    name = "keras"

    def __init__(self, keras_model):
        import tensorflow as tf

        self.input_size = int(keras_model.inputs[0].shape[1])
        self.has_distribution = "dist" in keras_model.output
        self._forward = tf.function(lambda x: keras_model(x, training=False), reduce_retracing=True)

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        parts = [
            self._forward(x[start : start + KERAS_CALL_BATCH])
            for start in range(0, max(len(x), 1), KERAS_CALL_BATCH)
        ]
        return {key: np.concatenate([np.asarray(p[key]) for p in parts]) for key in parts[0]}


class OpenVinoRunner:
    """An OpenVINO IR compiled for the CPU; a batch is split over parallel infer requests."""

    def __init__(self, xml: Path, precision: str, *, hint: str = PERFORMANCE_HINT):
        import openvino as ov

        if hint.lower() not in HINTS:
            raise ModelError(f"performance hint: unknown {hint!r}; use one of {', '.join(HINTS)}")
        self.hint = hint.lower()
        with openvino_setup():
            core = ov.Core()
            model = core.read_model(xml)
            size = model.input(0).get_partial_shape()[1].get_length()
            model.reshape({model.input(0): ov.PartialShape([-1, size, size, 3])})  # dynamic batch
            # f32 on every CPU: on one with bf16 (AMX, AVX-512 BF16) OpenVINO would otherwise
            # run the model's float layers in bf16, and the estimates would differ by machine.
            config = {"PERFORMANCE_HINT": hint.upper(), "INFERENCE_PRECISION_HINT": "f32"}
            self.compiled = core.compile_model(model, "CPU", config)
        self.name = f"openvino-{precision}"
        self.input_size = size
        self.outputs = [o.get_any_name() for o in self.compiled.outputs]
        self.has_distribution = "dist" in self.outputs
        requests = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self._queue = ov.AsyncInferQueue(self.compiled, max(1, requests))
        self._queue.set_callback(self._collect)
        self._results: dict[int, list[np.ndarray]] = {}
        self._lock = threading.Lock()

    def _collect(self, request, part: int) -> None:
        outputs = range(len(self.outputs))
        self._results[part] = [request.get_output_tensor(i).data.copy() for i in outputs]

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        parts = np.array_split(x, min(len(self._queue), len(x)))
        with self._lock:
            self._results = {}
            for index, part in enumerate(parts):
                self._queue.start_async({0: np.ascontiguousarray(part)}, userdata=index)
            self._queue.wait_all()
            results = [self._results[index] for index in range(len(parts))]
        return {
            name: np.concatenate([r[i] for r in results]) for i, name in enumerate(self.outputs)
        }


def open_runner(
    model_dir: Path, card: dict, engine: str, hint: str = PERFORMANCE_HINT
) -> OpenVinoRunner | None:
    """The engine ``engine`` asks for, or None for Keras; ``hint`` is OpenVINO's performance hint.

    ``auto`` takes the card's default engine and falls back to Keras, with one warning saying
    why, when its files are missing or altered or OpenVINO cannot run them; ``openvino`` raises
    :class:`ModelDirectoryError` instead.
    """
    if engine not in ENGINES:
        raise ModelError(f"engine: unknown {engine!r}; use one of {', '.join(ENGINES)}")
    if hint not in HINTS:
        raise ModelError(f"performance hint: unknown {hint!r}; use one of {', '.join(HINTS)}")
    section = card.get("engine") or {}
    if engine == "keras" or (engine == "auto" and section.get("default", "keras") == "keras"):
        return None
    try:
        return _open_openvino(model_dir, section, hint)
    except ModelDirectoryError as exc:
        if engine == "openvino":
            raise
        log.warning("%s; using the Keras engine instead", exc)
        return None


def _open_openvino(model_dir: Path, section: dict, hint: str) -> OpenVinoRunner:
    files = section.get("files") or {}
    if IR_FILE not in files or IR_WEIGHTS not in files:
        raise ModelDirectoryError(
            f"{model_dir / 'model_card.json'}: no OpenVINO engine recorded; build it with "
            f"`auditor model engine --model {model_dir} --data ...`"
        )
    for name in (IR_FILE, IR_WEIGHTS):
        path = model_dir / name
        if not path.is_file():
            raise ModelDirectoryError(f"{path}: OpenVINO engine file not found")
        if file_hash(path) != files[name]:
            raise ModelDirectoryError(
                f"{path}: SHA-256 does not match the engine's in model_card.json"
            )
    try:
        import openvino  # noqa: F401
    except ImportError as exc:
        raise ModelDirectoryError(f"OpenVINO cannot be imported ({exc})") from exc
    try:
        return OpenVinoRunner(model_dir / IR_FILE, section.get("precision", "fp32"), hint=hint)
    except Exception as exc:  # openvino raises RuntimeError and others for a bad IR
        raise ModelDirectoryError(
            f"{model_dir / IR_FILE}: OpenVINO cannot compile it ({exc})"
        ) from exc
