"""Cross-backend validation: run the same cells and angles on several backends, compare readouts.

Every backend is compared with the first one named and with the exact complex128 reference
(``numpy.statevector``). A backend that samples (``shots=N``) is also compared with the
statistics its estimates should obey: each estimate is a mean of N outcomes ±1, so its standard
error is sqrt((1 - ⟨P⟩²)/N), and the report gives the largest deviation in those units. ⟨P⟩ is the
backend's own exact expectation when it has one (so a noise model's effect is not counted as
sampling error), else the noiseless reference value.

Backends are named by their registry name, optionally tagged to run one backend in several
configurations: ``["qiskit.aer", "qiskit.aer@shots"]`` with ``options={"qiskit.aer@shots":
{"shots": 4096}}``.

Example::

    report = validate(["torch.statevector", "qiskit.aer@shots"],
                      options={"qiskit.aer@shots": {"shots": 4096, "seed": 1}})
    print(report.format())
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
import torch

from qrnn.backends.base import Program
from qrnn.errors import QRNNError
from qrnn.registry import get_backend
from qrnn.testing.cells import random_cell, random_thetas

REFERENCE = "numpy.statevector"
_NEGLIGIBLE = 1e-9  # deviations below this are rounding, not sampling


@attrs.frozen
class ReadoutComparison:
    """How one backend's readouts compare, maximised over every step, sample and readout."""

    label: str
    """The name as given to :func:`validate` (``registry.name`` or ``registry.name@tag``)."""
    mode: str
    """The backend's readout mode, e.g. ``expectation`` or ``shots=4096``."""
    shots: int | None
    max_difference: float
    """Largest |readout - readout of the baseline backend|."""
    max_error: float
    """Largest |readout - exact noiseless readout| (the complex128 reference)."""
    max_standard_errors: float | None = None
    """Shots backends: largest |estimate - ⟨P⟩| / sqrt((1 - ⟨P⟩²)/N); None without shots."""
    expectation: str | None = None
    """What ⟨P⟩ was: ``"own"`` (the backend's exact expectation) or ``"ideal"`` (the reference)."""

    def merge(self, other: ReadoutComparison) -> ReadoutComparison:
        """The worst of two comparisons of the same backend (on different cells)."""
        pair = (self.max_standard_errors, other.max_standard_errors)
        z_scores = [z for z in pair if z is not None]
        return attrs.evolve(
            self,
            max_difference=max(self.max_difference, other.max_difference),
            max_error=max(self.max_error, other.max_error),
            max_standard_errors=max(z_scores) if z_scores else None,
            expectation=self.expectation if self.expectation == other.expectation else "mixed",
        )


@attrs.frozen
class ValidationReport:
    """The result of :func:`validate`: one :class:`ReadoutComparison` per named backend."""

    baseline: str
    rows: tuple[ReadoutComparison, ...]
    n_cells: int
    n_qubits: tuple[int, ...]
    n_steps: int
    batch_size: int

    @property
    def max_difference(self) -> float:
        """The largest readout difference of any backend to the baseline."""
        return max(row.max_difference for row in self.rows)

    def __getitem__(self, label: str) -> ReadoutComparison:
        for row in self.rows:
            if row.label == label:
                return row
        raise KeyError(f"no backend {label!r} in this report (has {[r.label for r in self.rows]})")

    def format(self) -> str:
        """A printable table, one line per backend."""
        qubits = ", ".join(map(str, self.n_qubits))
        title = (
            f"cross-backend readouts: {self.n_cells} random cell(s) per qubit count "
            f"(n_qubits {qubits}), {self.n_steps} steps, batch {self.batch_size}"
        )
        return format_comparisons(title, self.baseline, self.rows)


def format_comparisons(title: str, baseline: str, rows: Sequence[ReadoutComparison]) -> str:
    """A title and a table with one line per compared backend."""
    header = ("backend", "readout", f"max |Δ| vs {baseline}", "max |Δ| vs exact", "max dev / SE")
    lines = [header]
    for row in rows:
        z_score = "-"
        if row.max_standard_errors is not None:
            z_score = f"{row.max_standard_errors:.2f} ({row.expectation})"
        lines.append(
            (row.label, row.mode, f"{row.max_difference:.3g}", f"{row.max_error:.3g}", z_score)
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    table = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    return "\n".join([title, *table])


def _registry_name(label: str) -> str:
    return label.partition("@")[0]


def _run(program: Program, thetas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Readouts (T, B, K) of ``program`` and, for a sampling backend, its own exact expectations
    (None without shots, or when it has none, as on a device)."""
    state = program.init_state(thetas.shape[1])
    readouts = []
    own: list[torch.Tensor] | None = [] if program.backend.shots is not None else None
    for theta in thetas:
        state, readout = program.step(state, theta)
        readouts.append(readout.detach().double().cpu())
        if own is not None:
            try:
                own.append(program.expectations(state).detach().double().cpu())
            except QRNNError:  # it only samples: the caller compares with the ideal values
                own = None
    return torch.stack(readouts), None if own is None else torch.stack(own)


def _standard_errors(estimate: torch.Tensor, expected: torch.Tensor, shots: int) -> float:
    """Largest |estimate - expected| in standard errors sqrt((1 - expected²)/shots)."""
    deviation = (estimate - expected).abs()
    standard_error = ((1 - expected**2).clamp_min(0) / shots).sqrt()
    # A deviation where the standard error is 0 (⟨P⟩ = ±1) is infinitely unlikely.
    ratio = torch.where(
        deviation <= _NEGLIGIBLE, torch.zeros_like(deviation), deviation / standard_error
    )
    return float(ratio.max())


def compare_readouts(
    programs: Mapping[str, Program], thetas: torch.Tensor, reference: Program | None = None
) -> list[ReadoutComparison]:
    """Run the same (T, B, P) angles through programs compiled from one cell, and compare.

    Args:
        programs: label -> program, all compiled from the same cell; the first is the baseline.
        thetas: (T, B, P) angles, e.g. from :func:`qrnn.testing.random_thetas` or recorded from a
            trained model.
        reference: the exact noiseless program (default: the cell on ``numpy.statevector``).

    Returns:
        one comparison per program, in order.
    """
    if not programs:
        raise QRNNError("compare_readouts needs at least one program (got none)")
    cell = next(iter(programs.values())).cell
    for label, program in programs.items():
        if program.cell != cell:
            raise QRNNError(f"program {label!r} was compiled from another cell than the first")
    if reference is None:
        reference = get_backend(REFERENCE).prepare(cell)
    with torch.no_grad():
        exact, _ = _run(reference, thetas)
        runs = {label: _run(program, thetas) for label, program in programs.items()}
    baseline = next(iter(runs.values()))[0]
    comparisons = []
    for label, (readouts, own) in runs.items():
        backend = programs[label].backend
        z_score = None
        if backend.shots is not None:
            z_score = _standard_errors(readouts, exact if own is None else own, backend.shots)
        comparisons.append(
            ReadoutComparison(
                label=label,
                mode=backend.readout_mode,
                shots=backend.shots,
                max_difference=float((readouts - baseline).abs().max()),
                max_error=float((readouts - exact).abs().max()),
                max_standard_errors=z_score,
                expectation=None if z_score is None else ("ideal" if own is None else "own"),
            )
        )
    return comparisons


def validate(
    backend_names: Sequence[str],
    n_qubits: Sequence[int] = (2, 4),
    n_cells: int = 3,
    n_steps: int = 8,
    batch_size: int = 4,
    seed: int = 0,
    options: Mapping[str, Mapping] | None = None,
) -> ValidationReport:
    """Run the same random cells and angles on every named backend and compare their readouts.

    Args:
        backend_names: registry names, optionally tagged (``"qiskit.aer@noisy"``); at least one.
            The first is the baseline of the differences.
        n_qubits: qubit counts to try; ``n_cells`` random cells each.
        n_cells: random cells per qubit count (using only gates every backend supports).
        n_steps: T, the steps of each sequence.
        batch_size: B, the sequences run side by side.
        seed: seeds the cells and the angles.
        options: label -> backend options, e.g. ``{"qiskit.aer@shots": {"shots": 4096}}``.

    Raises:
        QRNNError: no backend named, a name repeated, an option for an unnamed backend, or a
            count below 1.
    """
    labels = list(backend_names)
    options = dict(options or {})
    if not labels:
        raise QRNNError("validate needs at least one backend name (got none)")
    if len(set(labels)) != len(labels):
        raise QRNNError(f"backend names must be distinct; tag repeats as name@tag (got {labels})")
    unknown = sorted(set(options) - set(labels))
    if unknown:
        raise QRNNError(f"options given for {unknown}, which are not among the backends {labels}")
    for name, value in [("n_cells", n_cells), ("n_steps", n_steps), ("batch_size", batch_size)]:
        if not isinstance(value, int) or value < 1:
            raise QRNNError(f"'{name}' must be a positive int (got {value!r})")
    backends = {
        label: get_backend(_registry_name(label), **options.get(label, {})) for label in labels
    }
    reference = get_backend(REFERENCE)
    gates = frozenset.intersection(
        reference.capabilities.gates, *(b.capabilities.gates for b in backends.values())
    )
    worst: dict[str, ReadoutComparison] = {}
    for n in n_qubits:
        for index in range(n_cells):
            case_seed = seed + 1000 * n + index
            cell = random_cell(n, seed=case_seed, gates=gates)
            thetas = random_thetas(cell, batch_size, n_steps, seed=case_seed)
            programs = {label: backend.prepare(cell) for label, backend in backends.items()}
            for row in compare_readouts(programs, thetas, reference.prepare(cell)):
                worst[row.label] = worst[row.label].merge(row) if row.label in worst else row
    return ValidationReport(
        baseline=labels[0],
        rows=tuple(worst[label] for label in labels),
        n_cells=n_cells,
        n_qubits=tuple(n_qubits),
        n_steps=n_steps,
        batch_size=batch_size,
    )


def validate_run(
    run_dir,
    backend_names: Sequence[str],
    options: Mapping[str, Mapping] | None = None,
    n_samples: int = 16,
) -> tuple[str, dict[str, float]]:
    """Run a trained QRNN's recorded angles and its predictions on several backends.

    The angles θ_t are recorded once, from the run's own backend on ``n_samples`` test inputs,
    and replayed on every named backend (so readouts are compared on equal angles); then the
    whole model, controller feedback included, predicts on each backend.

    Returns:
        the readout table, and per backend the fraction of predictions (argmax over classes, or
        for regression the share within 1e-3) that equal those of the first backend.
    """
    from qrnn.train import load_run

    labels = list(backend_names)
    options = dict(options or {})
    trainer = load_run(run_dir)
    core = trainer.model.core
    if not hasattr(core, "program"):
        raise QRNNError(f"run {str(run_dir)!r} trained a classical model; nothing to validate")
    trainer.test_metrics()  # loads the best weights
    batch = tuple(t[:n_samples] for t in trainer.splits.test.tensors)
    recorded: list[torch.Tensor] = []
    hook = core.controller.register_forward_hook(lambda _m, _i, out: recorded.append(out[0]))
    trainer.model.eval()
    with torch.no_grad():
        trainer.task.forward(trainer.model, batch)
    hook.remove()
    thetas = torch.stack(recorded).double()  # (T, B, P)
    programs = {
        label: get_backend(_registry_name(label), **options.get(label, {})).prepare(core.cell)
        for label in labels
    }
    rows = compare_readouts(programs, thetas)
    title = (
        f"trained run {run_dir}: recorded angles of {len(batch[0])} test sequence(s), "
        f"{len(thetas)} steps"
    )
    predictions = {}
    with torch.no_grad():
        for label in labels:
            core.use_backend(_registry_name(label), **options.get(label, {}))
            logits, _ = trainer.task.forward(trainer.model, batch)
            predictions[label] = logits.argmax(-1) if logits.shape[-1] > 1 else logits
    first = predictions[labels[0]]
    agreement = {}
    for label, predicted in predictions.items():
        if first.is_floating_point():  # regression outputs
            same = (predicted - first).abs() <= 1e-3
        else:  # class indices
            same = predicted == first
        agreement[label] = float(same.float().mean())
    return format_comparisons(title, labels[0], rows), agreement
