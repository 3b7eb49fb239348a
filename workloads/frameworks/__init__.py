"""One adapter per framework, looked up by the CLI's ``--framework`` name.

Options are declared here rather than in the adapters so that a bad option is refused
before the framework is imported: a clean exit 2 in a second, not after a slow import.
The orchestrator's ``plan`` validates a spec's options with the same functions, so an
option a framework lacks (or a value its device cannot run) is refused before any cell runs.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Protocol, Union

from workloads.crashes import report_native_crashes
from workloads.errors import RequestError

if TYPE_CHECKING:
    import numpy as np

    from workloads.models import InputSpec, Model, ModelInfo
    from workloads.timing import Recorder

OptionValue = Union[bool, str, None]
FLAG = ("false", "true")
LAYOUTS = ("channels_last", "channels_first")
GPU_MEMORY_FRACTIONS = ("0.25", "0.5", "0.75", "0.9")
INPUTS = ("device", "host")


@dataclass(frozen=True)
class Option:
    """An option's accepted values (text), its default and the values that need a GPU.

    A default of None means "the framework's own default", recorded as resolved.
    """

    values: tuple[str, ...]
    default: Optional[str]
    gpu_only: tuple[str, ...] = ()

    @property
    def is_flag(self) -> bool:
        return self.values == FLAG

    def parse(self, text: str) -> OptionValue:
        return text == "true" if self.is_flag else text


def _precision(*cpu: str, gpu: tuple[str, ...] = ()) -> Option:
    return Option(("fp32", *cpu, *gpu), "fp32", gpu_only=gpu)


@dataclass(frozen=True)
class FrameworkSpec:
    """Where the adapter lives, which model API it builds with, and its options.

    ``conflicts`` lists option settings that cannot be combined, with the reason.
    """

    module: str
    api: str
    options: dict[str, Option]
    conflicts: tuple[tuple[dict[str, str], str], ...] = field(default=())


_EAGER_XLA = ({"run_eagerly": "true", "jit_compile": "true"}, "eager execution has no graph for XLA to compile")


def _with_common(options: dict[str, Option]) -> dict[str, Option]:
    """Every framework's own options plus the ones that mean the same in all of them.

    ``input``: where batches come from — ``device`` (the training split copied to the device once,
    shuffled and sliced there) or ``host`` (the framework's own host input path); no default means
    device for generated data and for data that fits a share of device memory (``run.resolve_input``).
    ``drop_remainder``: leave out the partial last batch, so every timed step has one shape.
    """
    return {**options, "input": Option(INPUTS, None), "drop_remainder": Option(FLAG, "true")}


# Allocator policy, the same default everywhere: memory grows as needed, so device memory figures
# compare across frameworks; ``all`` is the framework's own preallocation, a fraction caps it.
_GPU_MEMORY = Option(("growth", "all", *GPU_MEMORY_FRACTIONS), "growth", gpu_only=GPU_MEMORY_FRACTIONS)

FRAMEWORKS: dict[str, FrameworkSpec] = {
    "tensorflow": FrameworkSpec(
        "tfkeras",
        "keras",
        _with_common(
            {
                "jit_compile": Option(FLAG, "false"),
                "run_eagerly": Option(FLAG, "false"),
                "precision": _precision("bf16", gpu=("fp16",)),
                # TensorFlow's CPU convolutions support NHWC only.
                "data_format": Option(LAYOUTS, "channels_last", gpu_only=("channels_first",)),
                "gpu_memory": _GPU_MEMORY,
            }
        ),
        (_EAGER_XLA,),
    ),
    "jax": FrameworkSpec(
        "jaxkeras",
        "keras",
        _with_common(
            {
                "jit_compile": Option(FLAG, None),
                "run_eagerly": Option(FLAG, "false"),
                "precision": _precision("bf16", gpu=("fp16",)),
                "data_format": Option(LAYOUTS, "channels_last"),
                "gpu_memory": _GPU_MEMORY,
            }
        ),
        (_EAGER_XLA,),
    ),
    # Keras 2.2.4 has no mixed precision; channels_first is what keras-mxnet's authors advise.
    "keras-mxnet": FrameworkSpec("kerasmx", "keras", _with_common({"data_format": Option(LAYOUTS, "channels_first")})),
    "pytorch": FrameworkSpec(
        "torchloop",
        "torch",
        _with_common(
            {
                "compile": Option(FLAG, "false"),
                "precision": _precision("bf16", gpu=("fp16",)),
                "data_format": Option(LAYOUTS, "channels_first"),
            }
        ),
    ),
    # MXNet 1.x: AMP (float16) and NHWC convolutions run on GPUs only.
    "mxnet": FrameworkSpec(
        "gluon",
        "gluon",
        _with_common(
            {
                "hybridize": Option(FLAG, "false"),
                "precision": _precision(gpu=("fp16",)),
                "data_format": Option(LAYOUTS, "channels_first", gpu_only=("channels_last",)),
            }
        ),
    ),
}


class Adapter(Protocol):
    """What the runner needs from a framework: ``build``, then ``place``, then training and inference.

    Training is ``warm_up`` (untimed) then ``fit`` (timed through the recorder); neither synchronises
    per step: the recorder calls ``synchronize`` at window ends.
    """

    versions: dict[str, str]
    device: str
    options: dict[str, Any]
    notes: list[str]
    channels_first: bool

    def build(self, model: Model, inputs: InputSpec) -> int:
        """Build and compile ``model``; return its trainable parameter count as the framework counts it."""

    def place(self, x: np.ndarray, y: np.ndarray, where: str) -> None:
        """Hold the training split (float32 in the adapter's layout) for ``where`` input: ``device`` copies
        it to the device now, ``host`` keeps it for the framework's host input path."""

    def warm_up(self, batch_sizes: list[int]) -> None:
        """Train one untimed step of each batch size (cycling through the split), then synchronise."""

    def fit(self, batch_size: int, epochs: int, recorder: Recorder) -> None:
        """Train ``epochs`` epochs, shuffling each before ``recorder.start_epoch`` and reporting each step.

        ``batch_size`` is the global batch: with several replicas each trains on its share of it."""

    def synchronize(self) -> None:
        """Wait until the device has finished every queued operation."""

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        """Class scores of one batch as a host NumPy array (so the work is finished)."""

    def peak_device_memory_mb(self) -> Optional[float]:
        """The framework's own peak device-memory figure, or None where it reports none."""

    def device_memory_bytes(self) -> Optional[int]:
        """The training device's memory, or None on a CPU (where the split is in host memory anyway)."""


def option_text(value: Any) -> str:
    """A spec or CLI value as the text options are declared in (YAML booleans → true/false)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def check_option(framework: str, key: str, text: str, device: Optional[str] = None) -> OptionValue:
    """Validate one ``key=text`` for ``framework`` (and ``device``, when known); return the parsed value."""
    known = FRAMEWORKS[framework].options
    if key not in known:
        names = ", ".join(sorted(known)) or "none"
        raise RequestError(f"unknown option {key!r} for {framework}; known options: {names}")
    option = known[key]
    text = text.lower() if option.is_flag else text
    if text not in option.values:
        expected = f"{key}=true or {key}=false" if option.is_flag else f"{key}= one of {', '.join(option.values)}"
        raise RequestError(f"option {key}={text}: expected {expected}")
    if device == "cpu" and text in option.gpu_only:
        raise RequestError(f"{framework} supports {key}={text} on GPUs only, not on a CPU")
    return option.parse(text)


def check_combination(framework: str, texts: dict[str, str]) -> None:
    """Refuse option settings that contradict each other."""
    for combination, reason in FRAMEWORKS[framework].conflicts:
        if all(texts.get(key) == value for key, value in combination.items()):
            given = " and ".join(f"{key}={value}" for key, value in combination.items())
            raise RequestError(f"{framework}: {given} cannot be combined: {reason}")


def parse_options(framework: str, pairs: list[str], device: Optional[str] = None) -> dict[str, OptionValue]:
    """Turn ``KEY=VALUE`` pairs into the framework's options, defaults filled in."""
    known = FRAMEWORKS[framework].options
    texts = {key: option.default for key, option in known.items()}
    for pair in pairs:
        key, _, value = pair.partition("=")
        check_option(framework, key, value, device)
        texts[key] = value.lower() if known[key].is_flag else value
    check_combination(framework, {k: v for k, v in texts.items() if v is not None})
    return {key: None if text is None else known[key].parse(text) for key, text in texts.items()}


def check_api(framework: str, model: ModelInfo) -> None:
    """A RequestError unless ``model`` has a builder for ``framework``'s API (saying which APIs it has)."""
    api = FRAMEWORKS[framework].api
    if api not in model.apis:
        raise RequestError(
            f"model {model.name} has no {api} builder, so it cannot run on {framework} "
            f"(it has: {', '.join(model.apis)})"
        )


def create(
    framework: str, options: dict[str, OptionValue], lr: float, seed: int, optimizer: str, replicas: int = 1
) -> Adapter:
    """Import the framework's adapter (and so the framework) and construct it for ``replicas``
    data-parallel replicas (see ``workloads.replicas``)."""
    module = importlib.import_module(f"{__name__}.{FRAMEWORKS[framework].module}")
    adapter = module.create(options=options, lr=lr, seed=seed, optimizer=optimizer, replicas=replicas)
    report_native_crashes()
    for key, value in options.items():
        if value is not None:
            check_option(framework, key, option_text(value), adapter.device)
    return adapter
