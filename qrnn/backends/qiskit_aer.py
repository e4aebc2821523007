"""``qiskit.aer``: qrnn cells on Qiskit Aer (exact, shots, noise) or on any Qiskit ``BackendV2``.

Four ways to run, chosen by the options (see :class:`QiskitAerBackend`):

- exact: each sample's state is an Aer statevector, carried from step to step (every step is one
  Aer run that starts with ``set_statevector`` and ends with ``save_statevector``); readouts are
  exact Pauli expectations of that state;
- shots: the same carried state, readouts estimated from N shots of Aer measurement circuits
  seeded through Aer's own ``seed_simulator``; the carried state is not collapsed (the paper's
  non-disturbing mid-circuit readout);
- noise: a user ``NoiseModel`` or the noise model of a fake device, simulated with Aer's
  density-matrix method, the density matrix carried between steps;
- hardware: any ``BackendV2`` (a fake device, a simulator, a real device). Hardware cannot keep a
  coherent state while reading it out, so the readouts of step t come from re-running the whole
  prefix U(θ_t)…U(θ_1)|0…0⟩ and measuring it: step t costs t steps of circuit, a sequence of T
  steps costs O(T²).

Wire order: qrnn wire w is Qiskit qubit w. Qiskit numbers amplitudes little-endian (qubit 0 is
the least significant bit of a basis index) while qrnn's wire 0 is the most significant, so
amplitudes convert by reversing the bit order (:func:`reverse_bit_order`). Gate wires, Pauli terms,
noise-model qubit indices and OpenQASM ``q[w]`` need no conversion.

Qiskit is imported lazily, so ``import qrnn`` works without it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import torch

from qrnn.backends.base import Backend, Program
from qrnn.backends.capabilities import Capabilities
from qrnn.errors import BackendUnavailableError, QRNNError, UnsupportedCellError
from qrnn.hookspecs import hookimpl
from qrnn.ir import GATE_SPECS, Cell, Circuit, Readouts

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'qrnn[qiskit]'"
#: Largest n simulated as density matrices (4**n amplitudes per sample).
MAX_DENSITY_MATRIX_QUBITS = 10
#: Seed of every transpilation, so that layouts and routing are reproducible.
TRANSPILE_SEED = 0


def reverse_bit_order(amplitudes: np.ndarray, n_qubits: int) -> np.ndarray:
    """Convert (B, 2**n) amplitudes between qrnn's order and Qiskit's; its own inverse.

    Args:
        amplitudes: (B, D) complex array; index bit k (from the most significant) is wire k in
            qrnn's order, qubit n-1-k in Qiskit's.
        n_qubits: n.
    """
    batch = amplitudes.shape[0]
    tensor = amplitudes.reshape((batch,) + (2,) * n_qubits)
    return tensor.transpose((0,) + tuple(range(n_qubits, 0, -1))).reshape(batch, -1)


def to_qiskit(circuit: Circuit, thetas: Sequence[Any]) -> Any:
    """One step U(θ) as a Qiskit ``QuantumCircuit`` on n qubits, wire w on qubit w.

    Args:
        circuit: the per-step circuit.
        thetas: P angles: numbers for a bound circuit, or Qiskit ``Parameter`` objects (a
            ``ParameterVector``) for a template.

    Raises:
        QRNNError: ``thetas`` does not have P entries.
    """
    from qiskit import QuantumCircuit

    if len(thetas) != circuit.n_params:
        raise QRNNError(f"expected {circuit.n_params} angles for this circuit (got {len(thetas)})")
    qc = QuantumCircuit(circuit.n_qubits)
    for gate in circuit.gates:
        add = getattr(qc, gate.name)  # the IR's gate names are QuantumCircuit's method names
        if gate.parametrized:
            angle = thetas[gate.slot] if gate.slot is not None else gate.angle
            add(angle, *gate.wires)
        else:
            add(*gate.wires)
    return qc


def measurement_settings(readouts: Readouts) -> tuple[list[dict[int, str]], list[int]]:
    """Group the Pauli terms into qubit-wise commuting measurement settings.

    One setting (a basis X, Y or Z per wire) is measured for all terms that agree with it on every
    wire they share, so ``xyz`` readouts need 3 settings instead of 3n.

    Returns:
        the settings as {wire: letter}, and for each term the index of its setting.
    """
    settings: list[dict[int, str]] = []
    owner: list[int] = []
    for term in readouts:
        letters = dict(zip(term.wires, term.paulis, strict=True))
        for index, basis in enumerate(settings):
            if all(basis.get(wire, letter) == letter for wire, letter in letters.items()):
                basis.update(letters)
                owner.append(index)
                break
        else:
            settings.append(letters)
            owner.append(len(settings) - 1)
    return settings, owner


def _measurement_circuit(n_qubits: int, basis: dict[int, str]) -> Any:
    """Rotate each wire of ``basis`` into the Z basis, then measure wire w into clbit w."""
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(n_qubits, n_qubits)
    for wire, letter in sorted(basis.items()):
        if letter == "Y":  # S† then H maps the Y eigenbasis onto Z's
            qc.sdg(wire)
        if letter in "XY":
            qc.h(wire)
    qc.measure(range(n_qubits), range(n_qubits))
    return qc


class _Sampler:
    """Estimates readouts from measured circuits: one circuit per (sample, setting).

    The seed reaches the simulator as ``seed_simulator``, a fresh one per run drawn from a
    generator seeded by the backend's ``seed``.
    """

    def __init__(self, readouts: Readouts, shots: int, seed: int | None) -> None:
        self.shots = shots
        self.n_readouts = len(readouts)
        self.settings, owner = measurement_settings(readouts)
        self.n_wires = readouts.max_wire + 1
        # per setting: the indices of its terms and their wire bitmasks (clbit w = bit w)
        self.terms = [[k for k, s in enumerate(owner) if s == i] for i in range(len(self.settings))]
        masks = np.array([sum(1 << w for w in term.wires) for term in readouts], dtype=np.int64)
        self.masks = [masks[terms] for terms in self.terms]
        self._seeds = None if seed is None else np.random.default_rng(seed)

    def estimate(self, runner: Any, circuits: list) -> torch.Tensor:
        """Run ``circuits`` (B·S of them, grouped by sample) on ``runner``: (B, K) estimates.

        Clbit w holds wire w; a term's estimate is the mean ±1 parity of its wires' bits.
        """
        options: dict[str, Any] = {"shots": self.shots}
        if self._seeds is not None:
            options["seed_simulator"] = int(self._seeds.integers(2**31))
        result = runner.run(circuits, **options).result()
        n_settings = len(self.settings)
        values = np.zeros((len(circuits) // n_settings, self.n_readouts))
        for i in range(len(circuits)):
            sample, setting = divmod(i, n_settings)
            counts = result.get_counts(i)
            outcomes = np.array([int(key.replace(" ", ""), 2) for key in counts], dtype=np.int64)
            selected = outcomes[:, None] & self.masks[setting][None, :]  # (outcomes, terms)
            parity = np.zeros_like(selected)
            for wire in range(self.n_wires):
                parity ^= (selected >> wire) & 1
            weights = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            values[sample, self.terms[setting]] = weights @ (1 - 2 * parity)
        return torch.from_numpy(values / self.shots)


def _resolve_fake_device(device: Any) -> Any:
    """A fake device from ``qiskit_ibm_runtime.fake_provider`` by name, or the given BackendV2."""
    from qiskit.providers import BackendV2

    if isinstance(device, BackendV2):
        return device
    if not isinstance(device, str):
        raise QRNNError(
            f"'fake_device' must be a device name such as 'manila' or a qiskit BackendV2 "
            f"(got {type(device).__name__})"
        )
    try:
        from qiskit_ibm_runtime import fake_provider
    except ImportError as error:
        raise BackendUnavailableError(
            f"fake_device={device!r} needs qiskit-ibm-runtime's fake provider: {INSTALL_HINT} "
            f"({error})"
        ) from None
    name = device.lower()
    name = name if name.startswith("fake_") else f"fake_{name}"
    classes = {
        getattr(cls, "backend_name", None): cls
        for cls in vars(fake_provider).values()
        if isinstance(cls, type) and issubclass(cls, fake_provider.fake_backend.FakeBackendV2)
    }
    if name not in classes:
        known = ", ".join(sorted(n.removeprefix("fake_") for n in classes if n))
        raise QRNNError(f"unknown fake device {device!r}; expected one of: {known}")
    return classes[name]()


@attrs.frozen
class _Lowered:
    """A circuit made runnable on the simulator or device, with where the wires live.

    ``inputs[w]``/``outputs[w]`` are the simulator qubits that hold wire w before/after it (they
    differ when routing moved the wires); ``active`` are all qubits it touches.
    """

    circuit: Any
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    active: tuple[int, ...]


@attrs.frozen
class _Prefix:
    """Hardware-mode state: the angles applied so far, one (B, P) array per step."""

    batch_size: int
    thetas: tuple[np.ndarray, ...] = ()


class QiskitAerBackend(Backend):
    """Qiskit Aer simulation (exact, shots, noise) or execution on a Qiskit ``BackendV2``.

    Forward only: train on ``torch.statevector`` and evaluate here under ``torch.no_grad()``.

    Args:
        shots: None for exact readouts, or N: readouts estimated from N Aer shots per
            measurement setting (qubit-wise commuting terms share a setting). Required with
            ``target_backend``.
        seed: seeds Aer's sampler (``seed_simulator``, one fresh seed per run drawn from a
            generator seeded by this), so shot estimates are reproducible.
        noise_model: a ``qiskit_aer.noise.NoiseModel``; its qubit q is wire q. Circuits are
            translated to the model's basis gates and simulated as density matrices.
        fake_device: a fake device name from ``qiskit_ibm_runtime.fake_provider`` (``"manila"``
            or ``"fake_manila"``) or a ``BackendV2`` (e.g. qiskit's ``GenericBackendV2``): its
            noise model (``NoiseModel.from_backend``) is simulated as density matrices, with
            circuits transpiled to its target (layout, routing, basis gates). Routing ancillas
            start in |0⟩ each step and are traced out at its end.

            With noise, exact readouts are Tr(ρP) of the carried state; with shots, the
            measurement circuits (basis changes, measurements) are noisy too, readout errors
            included, as on a device.
        target_backend: a ``BackendV2`` to run on (hardware mode): each step's readouts re-run
            the prefix of the sequence, transpiled to its target, with ``shots``; cost O(T²) in
            the sequence length. The seed is passed to ``backend.run`` as ``seed_simulator``.
        layout: physical qubits for wires 0..n-1 with ``fake_device`` or ``target_backend``
            (default: the transpiler's choice for the step circuit, then kept).

    Example:
        ``qrnn.get_backend("qiskit.aer", shots=4096, seed=1, fake_device="manila")``
    """

    name = "qiskit.aer"
    capabilities = Capabilities(
        gates=frozenset(GATE_SPECS),
        max_qubits=None,  # memory-bound; density matrices and devices are checked in validate()
        differentiable=False,
        shots=True,
        noise=True,
        statevector=True,
    )

    def __init__(
        self,
        *,
        shots: int | None = None,
        seed: int | None = None,
        noise_model: Any = None,
        fake_device: Any = None,
        target_backend: Any = None,
        layout: Sequence[int] | None = None,
    ) -> None:
        super().__init__(shots=shots, seed=seed)
        from qiskit.providers import BackendV2
        from qiskit_aer import AerSimulator
        from qiskit_aer.noise import NoiseModel

        if noise_model is not None and not isinstance(noise_model, NoiseModel):
            raise QRNNError(
                f"'noise_model' must be a qiskit_aer.noise.NoiseModel (got "
                f"{type(noise_model).__name__})"
            )
        chosen = [k for k, v in [("noise_model", noise_model), ("fake_device", fake_device),
                                 ("target_backend", target_backend)] if v is not None]
        if len(chosen) > 1:
            raise QRNNError(
                f"pass at most one of 'noise_model', 'fake_device', 'target_backend' (got "
                f"{' and '.join(chosen)})"
            )
        if target_backend is not None:
            if not isinstance(target_backend, BackendV2):
                raise QRNNError(
                    f"'target_backend' must be a qiskit BackendV2 (got "
                    f"{type(target_backend).__name__})"
                )
            if shots is None:
                raise QRNNError(
                    "target_backend runs measured circuits, so it needs shots=N (got shots=None)"
                )
        self.device = target_backend
        if fake_device is not None:
            self.device = _resolve_fake_device(fake_device)
            noise_model = NoiseModel.from_backend(self.device)
        if layout is not None and self.device is None:
            raise QRNNError("'layout' needs 'fake_device' or 'target_backend' (got neither)")
        self.layout = None if layout is None else tuple(int(q) for q in layout)
        self.noise_model = noise_model
        self.mode = (
            "hardware" if target_backend is not None
            else "density_matrix" if noise_model is not None
            else "statevector"
        )
        self.simulator = None
        if self.mode != "hardware":
            self.simulator = AerSimulator(method=self.mode, noise_model=noise_model)

    @classmethod
    def check_available(cls) -> None:
        """Raise :class:`BackendUnavailableError` unless qiskit 2.x and qiskit-aer import."""
        try:
            import qiskit
            import qiskit_aer  # noqa: F401
        except ImportError as error:
            raise BackendUnavailableError(
                f"backend 'qiskit.aer' needs qiskit>=2 and qiskit-aer: {INSTALL_HINT} ({error})"
            ) from None
        major = int(qiskit.__version__.split(".")[0])
        if major < 2:
            raise BackendUnavailableError(
                f"backend 'qiskit.aer' needs qiskit>=2 (got {qiskit.__version__}): {INSTALL_HINT}"
            )

    @property
    def tolerance(self) -> float:
        return 1e-9

    @property
    def readout_mode(self) -> str:
        parts = [self.mode]
        if self.device is not None:
            parts.append(f"device={self.device.name}")
        parts.append("expectation" if self.shots is None else f"shots={self.shots}")
        return ", ".join(parts)

    def validate(self, cell: Cell) -> None:
        super().validate(cell)
        n = cell.n_qubits
        if self.mode == "density_matrix" and n > MAX_DENSITY_MATRIX_QUBITS:
            raise UnsupportedCellError(
                f"backend 'qiskit.aer' simulates noise with density matrices of at most "
                f"{MAX_DENSITY_MATRIX_QUBITS} qubits (got n_qubits={n})"
            )
        if self.device is not None and n > self.device.num_qubits:
            raise UnsupportedCellError(
                f"device {self.device.name!r} has {self.device.num_qubits} qubits (got "
                f"n_qubits={n})"
            )
        if self.layout is not None and len(self.layout) != n:
            raise UnsupportedCellError(
                f"'layout' names {len(self.layout)} physical qubits, expected one per wire "
                f"(n_qubits={n})"
            )

    def compile(self, cell: Cell) -> Program:
        if self.mode == "hardware":
            return AerPrefixProgram(self, cell)
        return AerStateProgram(self, cell)

    def lower(self, circuit: Any, layout: Sequence[int] | None = None) -> _Lowered:
        """Make a logical circuit (wire w on qubit w) runnable here.

        Without a device it is kept as is, or translated to the noise model's basis gates; with a
        device it is transpiled to the device's target with ``layout`` (or the transpiler's).
        """
        from qiskit import transpile

        identity = tuple(range(circuit.num_qubits))
        if self.device is None:
            if self.noise_model is not None:
                circuit = transpile(
                    circuit, basis_gates=self.noise_model.basis_gates, optimization_level=0
                )
            return _Lowered(circuit, identity, identity, identity)
        compiled = transpile(
            circuit,
            target=self.device.target,
            initial_layout=None if layout is None else list(layout),
            optimization_level=1,
            seed_transpiler=TRANSPILE_SEED,
        )
        inputs = tuple(compiled.layout.initial_index_layout(filter_ancillas=True))
        outputs = tuple(compiled.layout.final_index_layout(filter_ancillas=True))
        touched = {compiled.find_bit(q).index for inst in compiled.data for q in inst.qubits}
        return _Lowered(compiled, inputs, outputs, tuple(sorted(touched | set(inputs))))


def _bind(template: Any, parameters: Sequence[Any], values: np.ndarray) -> Any:
    """The template with ``parameters`` set to ``values``; parameters optimised away are skipped."""
    binding = dict(zip(parameters, values.tolist(), strict=True))
    return template.assign_parameters(binding, strict=False)


class AerStateProgram(Program):
    """Exact, shots and noise modes. State: (B, D) statevectors or (B, D, D) density matrices,
    in Qiskit's (little-endian) order."""

    def __init__(self, backend: QiskitAerBackend, cell: Cell) -> None:
        super().__init__(backend, cell)
        from qiskit.circuit import ParameterVector
        from qiskit.quantum_info import SparsePauliOp

        self.mixed = backend.mode == "density_matrix"
        self.parameters = ParameterVector("theta", cell.n_params)
        self.step_circuit = backend.lower(to_qiskit(cell.circuit, self.parameters), backend.layout)
        self.operators = [
            SparsePauliOp.from_sparse_list([(t.paulis, list(t.wires), 1.0)], cell.n_qubits)
            for t in cell.readouts
        ]
        self.sampler = None
        if backend.shots is not None:
            self.sampler = _Sampler(cell.readouts, backend.shots, backend.seed)
            # Single-qubit basis changes need no routing: the wires stay on the step's inputs.
            self.measurements = [
                backend.lower(_measurement_circuit(cell.n_qubits, basis), self.step_circuit.inputs)
                for basis in self.sampler.settings
            ]

    # -- the contract -------------------------------------------------------------------------

    def init_state(self, batch_size: int) -> np.ndarray:
        dim = 2**self.cell.n_qubits
        shape = (batch_size, dim, dim) if self.mixed else (batch_size, dim)
        state = np.zeros(shape, dtype=np.complex128)
        state[(slice(None), 0, 0) if self.mixed else (slice(None), 0)] = 1.0
        return state

    def evolve(self, state: np.ndarray, thetas: torch.Tensor) -> np.ndarray:
        lowered = self.step_circuit
        angles = thetas.detach().cpu().numpy()  # (B, P)
        circuits = []
        for b in range(len(state)):
            qc = self._prepared(state[b], lowered)
            qc.compose(_bind(lowered.circuit, self.parameters, angles[b]), inplace=True)
            if self.mixed:  # the reduced state of the wires, wherever routing left them
                qc.save_density_matrix(qubits=list(lowered.outputs), label="state")
            else:
                qc.save_statevector(label="state")
            circuits.append(qc)
        result = self.backend.simulator.run(circuits).result()
        return np.stack([np.asarray(result.data(i)["state"]) for i in range(len(circuits))])

    def expectations(self, state: np.ndarray) -> torch.Tensor:
        from qiskit.quantum_info import DensityMatrix, Statevector

        wrap = DensityMatrix if self.mixed else Statevector
        values = [[wrap(s).expectation_value(op).real for op in self.operators] for s in state]
        return torch.tensor(values, dtype=torch.float64).reshape(len(state), self.n_readouts)

    def readout(self, state: np.ndarray) -> torch.Tensor:
        """Exact readouts, or Aer's estimates from ``shots`` measurement shots per setting."""
        if self.sampler is None:
            return self.expectations(state)
        circuits = [
            self._prepared(s, m).compose(m.circuit) for s in state for m in self.measurements
        ]
        return self.sampler.estimate(self.backend.simulator, circuits)

    def statevector(self, state: np.ndarray) -> torch.Tensor:
        if self.mixed:
            raise NotImplementedError(
                "qiskit.aer with noise carries density matrices, not statevectors"
            )
        return torch.from_numpy(reverse_bit_order(state, self.cell.n_qubits))

    def qasm3(self, thetas: Sequence[float]) -> str:
        """OpenQASM 3 of one step with angles ``thetas`` (P numbers), by ``qiskit.qasm3``."""
        from qiskit import qasm3

        return qasm3.dumps(to_qiskit(self.cell.circuit, [float(v) for v in thetas]))

    def _prepared(self, state: np.ndarray, lowered: _Lowered) -> Any:
        """An empty circuit of ``lowered``'s width that sets ``state`` on its input qubits.

        Routing ancillas (active qubits that hold no wire) start in |0⟩.
        """
        from qiskit import QuantumCircuit
        from qiskit_aer.library import SetDensityMatrix, SetStatevector

        qc = QuantumCircuit(*lowered.circuit.qregs, *lowered.circuit.cregs)
        qubits = list(lowered.inputs)
        if self.mixed:
            ancillas = [q for q in lowered.active if q not in lowered.inputs]
            zero = np.zeros((2 ** len(ancillas),) * 2)
            zero[0, 0] = 1.0
            # Qiskit's kron puts its right factor on the lower qubits: the wires come first.
            state, qubits = np.kron(zero, state), qubits + ancillas
        state, qubits = _on_sorted_qubits(state, qubits)
        qc.append((SetDensityMatrix if self.mixed else SetStatevector)(state), qubits)
        return qc


def _on_sorted_qubits(state: np.ndarray, qubits: list[int]) -> tuple[np.ndarray, list[int]]:
    """Reorder a state whose qubit i sits on ``qubits[i]`` so that its qubits ascend.

    Aer's ``set_statevector``/``set_density_matrix`` place the state's qubits on the target qubits
    in ascending order, whatever order they are appended in (``save_*`` do keep the order).
    """
    m = len(qubits)
    order = sorted(range(m), key=qubits.__getitem__)  # new qubit j is old qubit order[j]
    axes = [m - 1 - order[m - 1 - a] for a in range(m)]  # axis a holds qubit m-1-a
    if state.ndim == 2:  # density matrix: permute rows and columns alike
        axes += [a + m for a in axes]
    tensor = state.reshape((2,) * (m * state.ndim)).transpose(axes)
    return tensor.reshape(state.shape), sorted(qubits)


class AerPrefixProgram(Program):
    """Hardware mode: the state is the list of angles so far; every readout re-runs the prefix.

    At step t each measurement setting is one circuit U(θ_t)…U(θ_1)|0…0⟩ followed by basis
    changes and measurements, transpiled once per (t, setting) with symbolic angles and bound per
    sample. The templates are cached, so a second sequence of the same length transpiles nothing.
    """

    def __init__(self, backend: QiskitAerBackend, cell: Cell) -> None:
        super().__init__(backend, cell)
        self.sampler = _Sampler(cell.readouts, backend.shots, backend.seed)
        self._templates: dict[int, tuple[list, list[_Lowered]]] = {}

    def init_state(self, batch_size: int) -> _Prefix:
        return _Prefix(batch_size)

    def batch_size(self, state: _Prefix) -> int:
        return state.batch_size

    def evolve(self, state: _Prefix, thetas: torch.Tensor) -> _Prefix:
        return _Prefix(state.batch_size, state.thetas + (thetas.detach().cpu().numpy(),))

    def expectations(self, state: _Prefix) -> torch.Tensor:
        raise QRNNError(
            "qiskit.aer with a target_backend only samples: a device's exact expectations are "
            "not observable; use readout()"
        )

    def readout(self, state: _Prefix) -> torch.Tensor:
        n_steps = len(state.thetas)
        parameters, lowered = self._prefix_templates(n_steps)
        # (B, t·P): each sample's angles of steps 1..t, in the template's parameter order
        angles = np.concatenate((np.zeros((state.batch_size, 0)),) + state.thetas, axis=1)
        circuits = [
            _bind(m.circuit, parameters, angles[b])
            for b in range(state.batch_size) for m in lowered
        ]
        return self.sampler.estimate(self.backend.device, circuits)

    def _prefix_templates(self, n_steps: int) -> tuple[list, list[_Lowered]]:
        """Parameters and transpiled circuits of the t-step prefix, one per setting (cached)."""
        if n_steps not in self._templates:
            from qiskit import QuantumCircuit
            from qiskit.circuit import ParameterVector

            n, circuit = self.cell.n_qubits, self.cell.circuit
            steps = [ParameterVector(f"theta{t}", circuit.n_params) for t in range(n_steps)]
            prefix = QuantumCircuit(n, n)
            for vector in steps:
                prefix.compose(to_qiskit(circuit, vector), inplace=True)
            logger.debug("transpiling the %d-step prefix for %s", n_steps, self.backend.device)
            lowered = [
                self.backend.lower(prefix.compose(_measurement_circuit(n, basis)),
                                   self.backend.layout)
                for basis in self.sampler.settings
            ]
            self._templates[n_steps] = ([p for v in steps for p in v], lowered)
        return self._templates[n_steps]


@hookimpl
def register_backends(register):
    register(QiskitAerBackend)
