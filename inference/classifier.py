"""The :class:`Classifier`: batched, length-sorted, windowed prediction with thresholds.

Scores are *potential indications for human verification*, never verdicts.
"""

from __future__ import annotations

import importlib.util
import itertools
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from inference.auxiliary import AuxiliaryPrediction, AuxiliaryTask, softmax, tasks_from_config, to_prediction
from inference.backends.base import Backend
from inference.input_prefix import check_input_prefix
from inference.modeldir import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_STRIDE,
    DEFAULT_THRESHOLD,
    ONNX_FP32_FILE,
    ONNX_INT8_FILE,
    WEIGHTS_FILE,
    ModelInfo,
    check_model_dir,
    read_model_info,
)
from inference.taxonomy import Taxonomy
from inference.text import normalize_text
from inference.windows import Window, WindowTokenizer

if TYPE_CHECKING:
    from inference.explain import Explanation

Threshold = float | Mapping[str, float] | None
EMPTY_TEXT_WARNING = "empty or whitespace-only text: not scored, no labels"
#: Tokens per forward pass on CPU. CPU throughput is flat in batch size at a fixed number of
#: tokens, while activation memory grows with it: 512 tokens (2 windows of 256, or 32 short
#: posts of 16) keeps a base-size int8 model under 300 MB at full speed (docs/benchmarks.md).
CPU_MAX_BATCH_TOKENS = 512
BACKENDS = ("auto", "torch", "onnx")


@dataclass
class Prediction:
    """The model's output for one text.

    ``labels`` are the fired labels in taxonomy order (``[]`` means ``tidak_ada_indikasi``);
    ``scores`` holds a probability in [0, 1] for every label. ``actor`` (is the actor a civil
    servant, by what the text says) and ``text_type`` (own post, report, rules explainer, other)
    come from a model trained with auxiliary heads; they are ``None`` otherwise and for empty
    texts (see :mod:`inference.auxiliary`).
    """

    labels: list[str]
    scores: dict[str, float]
    warning: str | None = None
    num_windows: int = 1
    negative_label: str = field(default="tidak_ada_indikasi", repr=False)
    actor: AuxiliaryPrediction | None = None
    text_type: AuxiliaryPrediction | None = None

    @property
    def flagged(self) -> bool:
        """True when any violation label fired (a potential indication to verify)."""
        return bool(self.labels)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: labels, flagged, scores, warning, num_windows, actor and
        text_type (each ``{"label", "scores"}`` or ``None``)."""
        return {
            "labels": list(self.labels),
            "flagged": self.flagged,
            "scores": dict(self.scores),
            "warning": self.warning,
            "num_windows": self.num_windows,
            "actor": None if self.actor is None else self.actor.to_dict(),
            "text_type": None if self.text_type is None else self.text_type.to_dict(),
        }


def sigmoid(x: Any) -> Any:
    """The logistic function in its overflow-free tanh form, keeping the input's dtype
    (float32 logits give float32 scores)."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _cuda_present() -> bool:
    """Whether a CUDA GPU is usable, without importing torch on machines with no NVIDIA driver
    (importing torch costs seconds and hundreds of MB that the ONNX path does not need)."""
    if not _module_available("torch"):
        return False
    if "torch" not in sys.modules and not (
        Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi")
    ):
        return False
    import torch

    return bool(torch.cuda.is_available())


def _choose_backend(
    path: Path, backend: str, device: str, onnx_file: str | None
) -> tuple[str, Path | None]:
    """Resolve ``backend="auto"``: int8 ONNX on CPU when present, else fp32 ONNX, else torch."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if onnx_file is not None:
        candidates = [path / onnx_file if not Path(onnx_file).is_absolute() else Path(onnx_file)]
    else:
        candidates = [path / ONNX_INT8_FILE, path / ONNX_FP32_FILE]
    if backend == "onnx":
        for candidate in candidates:
            if candidate.is_file():
                return "onnx", candidate
        raise FileNotFoundError(
            f"backend='onnx' but no ONNX file in {path}: looked for "
            f"{', '.join(str(c) for c in candidates)}. Export with "
            f"`python -m inference.export --model-dir {path} --quantize int8`."
        )
    if backend == "torch":
        return "torch", None
    wants_gpu = device.startswith("cuda") or (device == "auto" and _cuda_present())
    if not wants_gpu and _module_available("onnxruntime"):
        for candidate in candidates:
            if candidate.is_file():
                return "onnx", candidate
    if not _module_available("torch"):
        raise FileNotFoundError(
            f"torch is not installed and {path} has no ONNX export; install torch or export "
            "the model to ONNX on a machine with torch."
        )
    return "torch", None


class Classifier:
    """Multi-label classifier for potentially non-neutral ASN conduct.

    Load it once with :meth:`from_pretrained` and call :meth:`predict`, :meth:`predict_iter` or
    :meth:`explain`. Texts are normalised with :func:`inference.text.normalize_text`, cut into
    overlapping token windows, sorted by length and padded per batch; results come back in
    input order.
    """

    def __init__(
        self,
        backend: Backend,
        tokenizer: WindowTokenizer,
        taxonomy: Taxonomy,
        thresholds: Mapping[str, float] | None = None,
        info: ModelInfo | None = None,
        max_batch_tokens: int | None = None,
        auxiliary_tasks: Sequence[AuxiliaryTask] = (),
    ) -> None:
        self.backend = backend
        #: the auxiliary outputs (``actor``, ``text_type``) this model gives; empty for none
        self.auxiliary_tasks = list(auxiliary_tasks)
        self.tokenizer = tokenizer
        self.taxonomy = taxonomy
        self.info = info
        if max_batch_tokens is not None and max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be >= 1, got {max_batch_tokens}")
        #: upper bound on (windows x padded length) per forward pass; None = batch_size only
        self.max_batch_tokens = max_batch_tokens
        base = {name: DEFAULT_THRESHOLD for name in taxonomy.names}
        if thresholds:
            base.update(thresholds)
        self._thresholds = self._resolve_thresholds(None, np.array([base[n] for n in self.labels]))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        backend: str = "auto",
        device: str = "auto",
        threshold: Threshold = None,
        num_threads: int | None = None,
        onnx_file: str | None = None,
        max_length: int | None = None,
        stride: int | None = None,
        max_batch_tokens: int | str | None = "auto",
        revision: str | None = None,
        tokenizer_engine: str = "auto",
    ) -> Classifier:
        """Load a self-contained model directory, or a model published on the Hugging Face Hub.

        Args:
            model_dir: directory written by ``python -m training.train``, or a Hub repo id
                (``"org/name"``, a string that is not an existing path): fetched into the Hub
                cache with only the files the backend needs (see :mod:`inference.hub`);
                ``HF_HUB_OFFLINE=1`` uses the cache only.
            backend: ``"torch"``, ``"onnx"`` or ``"auto"`` (int8 ONNX on CPU when exported,
                PyTorch on GPU or when there is no ONNX file).
            device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
            threshold: a float for all labels or a ``{label: float}`` dict overriding
                ``thresholds.json``.
            num_threads: intra-op threads (default: the engine's choice, i.e. physical cores).
            onnx_file: a specific ONNX file inside the directory (e.g. ``"onnx/model.onnx"``).
            max_length, stride: window size and overlap in tokens (default: from the model).
            max_batch_tokens: cap on windows x padded length per forward pass; ``"auto"`` is
                :data:`CPU_MAX_BATCH_TOKENS` on CPU and no cap on GPU; ``None`` never caps.
            revision: branch, tag or commit of a Hub repo id (default: ``main``).
            tokenizer_engine: ``"auto"`` (the compact Unigram tokenizer for vocabularies of
                100,000 pieces or more: the same ids in about a fifth of the memory, somewhat
                slower), ``"tokenizers"`` (always the ``tokenizers`` library) or ``"compact"``.

        Raises:
            FileNotFoundError: the directory is missing or incomplete; for a repo id,
                :class:`inference.hub.HubModelUnavailableError` naming the ways out.
        """
        from inference.hub import is_repo_id, resolve_model_dir

        if is_repo_id(model_dir):
            model_dir = resolve_model_dir(str(model_dir), revision=revision, backend=backend,
                                          device=device, onnx_file=onnx_file)
        elif revision is not None:
            raise ValueError(f"revision={revision!r} applies to Hub repo ids, not to the local path {model_dir}")
        path = check_model_dir(model_dir)
        info = read_model_info(path)
        kind, onnx_path = _choose_backend(path, backend, device, onnx_file)
        # the tokenizer first: its load-time peak then does not stack on the model's
        tokenizer = WindowTokenizer.from_dir(
            path, max_length or info.max_length, info.stride if stride is None else stride, tokenizer_engine
        )
        runner: Backend
        if kind == "onnx":
            from inference.backends.onnx_backend import OnnxBackend

            assert onnx_path is not None
            runner = OnnxBackend(onnx_path, device="cpu" if device == "auto" else device,
                                 num_threads=num_threads)
        else:
            check_model_dir(path, need=(WEIGHTS_FILE,))
            from inference.backends.torch_backend import TorchBackend

            runner = TorchBackend.from_dir(path, device=device, num_threads=num_threads)
        check_input_prefix(tokenizer.tokenizer, info.config, str(path / "config.json"))
        if max_batch_tokens == "auto":
            max_batch_tokens = None if runner.device != "cpu" else CPU_MAX_BATCH_TOKENS
        tasks = tasks_from_config(info.config, str(path / "config.json"))
        _check_backend_outputs(runner, tasks)
        clf = cls(runner, tokenizer, info.taxonomy, info.thresholds, info=info,
                  max_batch_tokens=max_batch_tokens if isinstance(max_batch_tokens, int) else None,
                  auxiliary_tasks=tasks)
        if threshold is not None:
            clf.set_threshold(threshold)
        return clf

    @classmethod
    def from_model(
        cls,
        model: Any,
        tokenizer: Any,
        taxonomy: Taxonomy,
        thresholds: Mapping[str, float] | None = None,
        max_length: int = DEFAULT_MAX_LENGTH,
        stride: int = DEFAULT_STRIDE,
        device: str = "cpu",
    ) -> Classifier:
        """Wrap an in-memory ``transformers`` model and fast tokenizer (used during training).

        ``tokenizer`` may be a ``tokenizers.Tokenizer`` or a ``PreTrainedTokenizerFast``.
        """
        import copy

        from tokenizers import Tokenizer

        from inference.auxiliary_heads import get_heads
        from inference.backends.torch_backend import TorchBackend

        raw = tokenizer if isinstance(tokenizer, Tokenizer) else tokenizer.backend_tokenizer
        raw = copy.deepcopy(raw)
        window_tok = WindowTokenizer(raw, max_length, stride)
        pad_token = getattr(tokenizer, "pad_token", None)
        pad_id = raw.token_to_id(pad_token) if isinstance(pad_token, str) else None
        if pad_id is not None:
            window_tok.pad_id = int(pad_id)
        heads = get_heads(model)
        return cls(TorchBackend(model, device=device), window_tok, taxonomy, thresholds,
                   auxiliary_tasks=heads.tasks if heads is not None else ())

    # ------------------------------------------------------------------ properties
    @property
    def labels(self) -> list[str]:
        """Label names in output order."""
        return self.taxonomy.names

    @property
    def thresholds(self) -> dict[str, float]:
        """The decision threshold of each label currently in use."""
        return {name: float(t) for name, t in zip(self.labels, self._thresholds, strict=True)}

    def set_threshold(self, threshold: Threshold) -> None:
        """Change the default thresholds (a float for all labels or a per-label dict)."""
        self._thresholds = self._resolve_thresholds(threshold, self._thresholds)

    def _resolve_thresholds(self, threshold: Threshold, base: np.ndarray) -> np.ndarray:
        if threshold is None:
            out = base.astype(np.float32)
        elif isinstance(threshold, Mapping):
            unknown = set(threshold) - set(self.labels)
            if unknown:
                raise ValueError(
                    f"threshold dict has unknown label(s) {sorted(unknown)}; "
                    f"valid labels: {', '.join(self.labels)}"
                )
            out = base.astype(np.float32).copy()
            for name, value in threshold.items():
                out[self.labels.index(name)] = value
        elif isinstance(threshold, int | float) and not isinstance(threshold, bool):
            out = np.full(len(self.labels), float(threshold), dtype=np.float32)
        else:
            raise ValueError(
                f"threshold must be a float or a {{label: float}} dict, got {type(threshold).__name__}"
            )
        if not np.all((out > 0.0) & (out < 1.0)):
            raise ValueError(f"thresholds must lie strictly between 0 and 1, got {out.tolist()}")
        return out

    # ------------------------------------------------------------------ scoring
    def plan_batches(self, windows: Sequence[Window], batch_size: int) -> list[list[Window]]:
        """Sort windows by length and cut them into batches of at most ``batch_size`` windows
        and at most :attr:`max_batch_tokens` padded tokens (a single window always fits)."""
        batches: list[list[Window]] = []
        current: list[Window] = []
        for window in sorted(windows, key=lambda w: len(w.input_ids)):
            padded = (len(current) + 1) * len(window.input_ids)  # sorted: the newest is longest
            too_many_tokens = self.max_batch_tokens is not None and padded > self.max_batch_tokens
            if current and (len(current) >= batch_size or too_many_tokens):
                batches.append(current)
                current = []
            current.append(window)
        if current:
            batches.append(current)
        return batches

    def _aggregate(self, windows: list[Window], n_texts: int,
                   batch_size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Max-over-windows logits of ``n_texts`` texts (``Window.text_index`` < n) and, per
        auxiliary task, the mean over windows of the class probabilities. The sigmoid is
        monotonic, so the first is also the max-over-windows probability."""
        out = np.full((n_texts, len(self.labels)), -np.inf, dtype=np.float32)
        aux = {t.name: np.zeros((n_texts, len(t.classes)), dtype=np.float64) for t in self.auxiliary_tasks}
        for batch in self.plan_batches(windows, batch_size):
            inputs = self.tokenizer.pad(batch)
            outputs = self.backend.outputs(inputs) if aux else {"logits": self.backend.logits(inputs)}
            rows = np.fromiter((w.text_index for w in batch), dtype=np.int64)
            np.maximum.at(out, rows, outputs["logits"].astype(np.float32))
            for name, total in aux.items():
                np.add.at(total, rows, softmax(outputs[name]))
        if aux:
            counts = np.maximum(np.bincount([w.text_index for w in windows], minlength=n_texts), 1)
            aux = {name: total / counts[:, None] for name, total in aux.items()}
        return out, aux

    def _chunk_logits(self, raw: Sequence[Any], offset: int,
                      batch_size: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Logits of one chunk of texts (``-inf`` rows for empty texts), their window counts and
        the auxiliary class probabilities (zero rows for empty texts)."""
        texts = [_checked_text(t, offset + i) for i, t in enumerate(raw)]
        normalized = [normalize_text(t) for t in texts]
        keep = [i for i, t in enumerate(normalized) if t]
        logits = np.full((len(texts), len(self.labels)), -np.inf, dtype=np.float32)
        n_windows = np.zeros(len(texts), dtype=np.int64)
        aux = {t.name: np.zeros((len(texts), len(t.classes))) for t in self.auxiliary_tasks}
        if keep:
            # windows carry positions within `keep`; map back to chunk positions
            windows = self.tokenizer.windows([normalized[i] for i in keep])
            logits[keep], kept_aux = self._aggregate(windows, len(keep), batch_size)
            for name, probs in kept_aux.items():
                aux[name][keep] = probs
            n_windows[keep] = np.bincount([w.text_index for w in windows], minlength=len(keep))
        return logits, n_windows, aux

    def _predict_chunk(
        self, raw: Sequence[Any], offset: int, batch_size: int, thresholds: np.ndarray
    ) -> list[Prediction]:
        logits, n_windows, aux = self._chunk_logits(raw, offset, batch_size)
        probs = sigmoid(logits)
        out: list[Prediction] = []
        for i, (p, n) in enumerate(zip(probs, n_windows, strict=True)):
            if n == 0:
                out.append(Prediction([], dict.fromkeys(self.labels, 0.0), EMPTY_TEXT_WARNING, 0,
                                      self.taxonomy.negative_label))
                continue
            fired = [name for name, s, t in zip(self.labels, p, thresholds, strict=True) if s >= t]
            extra = {t.name: to_prediction(aux[t.name][i], t) for t in self.auxiliary_tasks}
            out.append(Prediction(fired, {n: float(s) for n, s in zip(self.labels, p, strict=True)},
                                  None, int(n), self.taxonomy.negative_label, **extra))
        return out

    @staticmethod
    def _chunks(texts: Iterable[Any], batch_size: int, chunk_size: int | None,
                caller: str) -> Iterator[tuple[int, list[Any]]]:
        """Check the arguments, then yield ``(offset, chunk)`` of ``chunk_size`` texts (default
        ``32 * batch_size``, at least 256) so that memory stays bounded."""
        if isinstance(texts, str):
            raise ValueError(f"{caller} expects an iterable of strings, got a single string")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        size = chunk_size or max(32 * batch_size, 256)
        iterator = iter(texts)
        offset = 0
        while chunk := list(itertools.islice(iterator, size)):
            yield offset, chunk
            offset += len(chunk)

    def predict_logits(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Raw max-over-windows logits of shape ``(len(texts), num_labels)``, before the sigmoid
        (``-inf`` for empty texts). ``predict`` scores are ``sigmoid(logits)``."""
        parts = [self._chunk_logits(chunk, offset, batch_size)[0]
                 for offset, chunk in self._chunks(texts, batch_size, None, "predict_logits")]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.labels)), dtype=np.float32)

    def predict_iter(
        self,
        texts: Iterable[Any],
        batch_size: int = 64,
        threshold: Threshold = None,
        chunk_size: int | None = None,
        progress: bool = False,
    ) -> Iterator[Prediction]:
        """Stream predictions in input order with memory bounded by ``chunk_size`` texts.

        The iterable is consumed ``chunk_size`` texts at a time (default ``32 * batch_size``);
        within a chunk, windows are sorted by length so padding is minimal.
        """
        chunks = self._chunks(texts, batch_size, chunk_size, "predict_iter")
        thresholds = self._resolve_thresholds(threshold, self._thresholds)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts) if isinstance(texts, Sequence) else None,
                       unit="text", desc="scoring")
        try:
            for offset, chunk in chunks:
                yield from self._predict_chunk(chunk, offset, batch_size, thresholds)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()

    @overload
    def predict(self, texts: str, batch_size: int = ..., threshold: Threshold = ...,  # type: ignore[overload-overlap]
                progress: bool = ...) -> Prediction: ...

    @overload
    def predict(self, texts: Sequence[str], batch_size: int = ..., threshold: Threshold = ...,
                progress: bool = ...) -> list[Prediction]: ...

    def predict(
        self,
        texts: str | Sequence[str],
        batch_size: int = 32,
        threshold: Threshold = None,
        progress: bool = False,
    ) -> Prediction | list[Prediction]:
        """Predict one text (returns a :class:`Prediction`) or a list (returns a list).

        Raises ``ValueError`` for ``None`` or non-string items, naming the item's index.
        Empty or whitespace-only strings give a Prediction with no labels and a ``warning``.
        """
        if isinstance(texts, str):
            return next(self.predict_iter([texts], batch_size=batch_size, threshold=threshold))
        if texts is None or not isinstance(texts, Iterable):
            raise ValueError(f"texts must be a string or a list of strings, got {texts!r}")
        return list(self.predict_iter(texts, batch_size=batch_size, threshold=threshold,
                                      progress=progress))

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Probabilities of shape ``(len(texts), num_labels)``; empty texts score 0."""
        preds = self.predict(list(texts), batch_size=batch_size)
        return np.array([[p.scores[n] for n in self.labels] for p in preds], dtype=np.float32)

    def explain(self, text: str, label: str | Sequence[str] | None = None,
                top_k: int = 10, max_units: int = 128) -> Explanation:
        """Which words drove each fired label (leave-one-word-out occlusion).

        See :func:`inference.explain.explain` for the method and the return value.
        """
        from inference.explain import explain

        return explain(self, text, label=label, top_k=top_k, max_units=max_units)

    def __repr__(self) -> str:
        return (f"Classifier(backend={self.backend.name!r}, labels={len(self.labels)}, "
                f"taxonomy_version={self.taxonomy.version!r})")


def _check_backend_outputs(runner: Backend, tasks: Sequence[AuxiliaryTask]) -> None:
    """An ONNX file exported before the heads were trained lacks their outputs: say so."""
    names = getattr(runner, "output_names", None)
    if names is None or not tasks:
        return
    missing = [f"{t.name}_logits" for t in tasks if f"{t.name}_logits" not in names]
    if missing:
        raise ValueError(
            f"{getattr(runner, 'path', 'the ONNX file')} has no output(s) {', '.join(missing)} for the auxiliary "
            "heads that config.json describes; re-export with `python -m inference.export`")


def _checked_text(value: Any, index: int) -> str:
    if value is None:
        raise ValueError(f"texts[{index}] is None; every item must be a string")
    if not isinstance(value, str):
        raise ValueError(
            f"texts[{index}] is a {type(value).__name__} ({value!r:.60}); every item must be a string"
        )
    return value


_CACHE: dict[tuple[str, str, str], Classifier] = {}


def predict(
    texts: str | Sequence[str],
    model: str | Path,
    batch_size: int = 32,
    backend: str = "auto",
    device: str = "auto",
    threshold: Threshold = None,
) -> Prediction | list[Prediction]:
    """Convenience wrapper: load (once, then cached) and predict.

    The loaded :class:`Classifier` is cached per model path, backend and device, so calling
    this in a loop does not reload the model.
    """
    key = (str(Path(model).resolve()), backend, device)
    clf = _CACHE.get(key)
    if clf is None:
        clf = Classifier.from_pretrained(model, backend=backend, device=device)
        _CACHE[key] = clf
    return clf.predict(texts, batch_size=batch_size, threshold=threshold)
