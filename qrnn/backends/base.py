"""The backend contract (version 1): a ``Backend`` compiles a ``Cell`` into a ``Program``.

A backend subclass defines ``name``, ``capabilities`` and :meth:`Backend.compile`; its program
defines :meth:`Program.init_state`, :meth:`Program.evolve` and :meth:`Program.expectations`.
Everything else (input checks, finite-shot sampling, the step) is shared here so every backend
behaves the same at its edges. θ go in and readouts come out as torch tensors; the state is the
backend's own business.
"""

from __future__ import annotations

import abc
import inspect
from typing import Any, ClassVar

import torch

from qrnn.backends.capabilities import Capabilities
from qrnn.errors import (
    InvalidInputError,
    NotDifferentiableError,
    QRNNError,
    UnsupportedCellError,
    UnsupportedGateError,
)
from qrnn.ir import Cell

API_VERSION = 1


class Backend(abc.ABC):
    """Base class of every backend.

    Subclasses set:
        name: the registry name, ``family.variant`` in lowercase (``"torch.statevector"``).
        capabilities: a :class:`Capabilities` instance.
    and override:
        compile(cell): build the :class:`Program` (``prepare`` validates and caches around it).
        check_available() (optional): raise :class:`BackendUnavailableError` when a dependency
            is missing; called before construction.
        tolerance (optional): the absolute readout accuracy it promises against complex128.

    Args:
        shots: None for exact expectation values (the paper's readout), or the number of shots
            used to estimate each Pauli term.
        seed: seed of the shot sampler, for reproducible estimates.
    """

    name: ClassVar[str]
    api_version: ClassVar[int] = API_VERSION
    capabilities: ClassVar[Capabilities]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if inspect.isabstract(cls):
            return
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name or name != name.lower() or "." not in name:
            raise TypeError(
                f"backend class {cls.__qualname__} must set 'name' to a dotted lowercase string "
                f"such as 'family.variant' (got {name!r})"
            )
        if not isinstance(getattr(cls, "capabilities", None), Capabilities):
            raise TypeError(
                f"backend class {cls.__qualname__} must set 'capabilities' to a Capabilities "
                f"instance (got {getattr(cls, 'capabilities', None)!r})"
            )

    def __init__(self, *, shots: int | None = None, seed: int | None = None) -> None:
        if shots is not None:
            if not isinstance(shots, int) or isinstance(shots, bool) or shots < 1:
                raise QRNNError(f"'shots' must be a positive int or None (got {shots!r})")
            if not self.capabilities.shots:
                raise QRNNError(f"backend {self.name!r} does not support shots")
        elif not self.capabilities.exact:
            raise QRNNError(f"backend {self.name!r} has no exact mode: pass shots=N")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise QRNNError(f"'seed' must be an int or None (got {seed!r})")
        self.shots = shots
        self.seed = seed
        self._programs: dict[Cell, Program] = {}

    @classmethod
    def check_available(cls) -> None:
        """Raise :class:`BackendUnavailableError` if this backend cannot run here."""

    @property
    def tolerance(self) -> float:
        """Absolute readout accuracy promised against the complex128 reference (exact mode)."""
        return 1e-6

    @property
    def readout_mode(self) -> str:
        return "expectation" if self.shots is None else f"shots={self.shots}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} readout={self.readout_mode}>"

    def validate(self, cell: Cell) -> None:
        """Check that this backend can run ``cell``; raise a clear error if not."""
        if not isinstance(cell, Cell):
            raise TypeError(f"expected a qrnn.ir.Cell (got {type(cell).__name__})")
        caps = self.capabilities
        unsupported = sorted(cell.circuit.gate_names - caps.gates)
        if unsupported:
            names = ", ".join(map(repr, unsupported))
            raise UnsupportedGateError(
                f"backend {self.name!r} does not support gate(s) {names} "
                f"(supported: {', '.join(sorted(caps.gates))})"
            )
        if caps.max_qubits is not None and cell.n_qubits > caps.max_qubits:
            raise UnsupportedCellError(
                f"backend {self.name!r} supports at most {caps.max_qubits} qubits "
                f"(got n_qubits={cell.n_qubits})"
            )

    def prepare(self, cell: Cell) -> Program:
        """Validate ``cell`` once and return its compiled program (cached per cell)."""
        program = self._programs.get(cell)
        if program is None:
            self.validate(cell)
            program = self._programs[cell] = self.compile(cell)
        return program

    @abc.abstractmethod
    def compile(self, cell: Cell) -> Program:
        """Build the program for a validated cell. Called by :meth:`prepare`; do not validate."""


class Program(abc.ABC):
    """A cell compiled for one backend: the recurrence |ψ_t⟩ = U(θ_t)|ψ_{t-1}⟩ and its readouts.

    Subclasses implement :meth:`init_state`, :meth:`evolve` and :meth:`expectations`, and may
    override :meth:`batch_size`, :meth:`statevector` and :meth:`real_dtype`.
    """

    def __init__(self, backend: Backend, cell: Cell) -> None:
        self.backend = backend
        self.cell = cell
        self._generator: torch.Generator | None = None

    @property
    def n_params(self) -> int:
        return self.cell.n_params

    @property
    def n_readouts(self) -> int:
        return self.cell.n_readouts

    # -- to implement -------------------------------------------------------------------------

    @abc.abstractmethod
    def init_state(self, batch_size: int) -> Any:
        """B copies of |0…0⟩."""

    @abc.abstractmethod
    def evolve(self, state: Any, thetas: torch.Tensor) -> Any:
        """Apply U(θ) to every state: thetas (B, P), already checked. Returns the new state."""

    @abc.abstractmethod
    def expectations(self, state: Any) -> torch.Tensor:
        """Exact readouts ⟨ψ|P_k|ψ⟩ of every state: (B, K) real tensor."""

    def batch_size(self, state: Any) -> int:
        """B of a state; the default reads the first dimension."""
        return int(state.shape[0])

    def statevector(self, state: Any) -> torch.Tensor:
        """The dense states, (B, D) complex, wire 0 the most significant bit (optional)."""
        raise NotImplementedError(f"backend {self.backend.name!r} does not expose its state")

    def real_dtype(self) -> torch.dtype:
        """dtype that θ are cast to and readouts are returned in."""
        return torch.float64

    # -- shared behaviour ---------------------------------------------------------------------

    def step(self, state: Any, thetas: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """One recurrent step: thetas (B, P) -> (new state, readouts (B, K))."""
        thetas = self.check_thetas(thetas, self.batch_size(state))
        state = self.evolve(state, thetas)
        return state, self.readout(state)

    def readout(self, state: Any) -> torch.Tensor:
        """Readouts (B, K) in the backend's mode: exact, or estimated from ``shots``."""
        return self.in_readout_mode(self.expectations(state))

    def in_readout_mode(self, exact: torch.Tensor) -> torch.Tensor:
        """Exact readouts (B, K) as the backend's mode reports them: as they are, or as
        finite-shot estimates (for programs that compute the exact values in their own step)."""
        return exact if self.backend.shots is None else self._sample(exact)

    def check_thetas(self, thetas: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Validate θ against this program and cast them to :meth:`real_dtype`."""
        name = self.backend.name
        if not isinstance(thetas, torch.Tensor):
            raise InvalidInputError(
                f"thetas must be a torch.Tensor of shape (B, P) (got {type(thetas).__name__})"
            )
        if not thetas.dtype.is_floating_point:
            raise InvalidInputError(
                f"thetas must be a real floating-point tensor (got dtype {thetas.dtype})"
            )
        expected = (batch_size, self.n_params)
        if tuple(thetas.shape) != expected:
            raise InvalidInputError(
                f"thetas must have shape (B, P) = {expected} for this cell and state "
                f"(got {tuple(thetas.shape)})"
            )
        if not torch.isfinite(thetas).all():
            raise InvalidInputError("thetas contain NaN or infinite values")
        if (
            thetas.requires_grad
            and torch.is_grad_enabled()
            and not self.backend.capabilities.differentiable
        ):
            raise NotDifferentiableError(
                f"backend {name!r} is forward-only: it cannot give gradients for training. "
                "Train on a differentiable backend such as 'torch.statevector' and evaluate on "
                f"{name!r} (under torch.no_grad())."
            )
        return thetas.to(self.real_dtype())

    def _sample(self, exact: torch.Tensor) -> torch.Tensor:
        """Finite-shot estimates of each term: mean of N ±1 outcomes with P(+1) = (1 + ⟨P⟩)/2.

        Terms are estimated independently (one measurement setting each). In autograd the
        estimate passes the exact value's gradient straight through (unbiased for the mean).
        """
        shots = self.backend.shots
        if self._generator is None:
            self._generator = torch.Generator()
            if self.backend.seed is None:
                self._generator.seed()
            else:
                self._generator.manual_seed(self.backend.seed)
        p_plus = ((1 + exact.detach().double().cpu()) / 2).clamp(0.0, 1.0)
        counts = torch.binomial(torch.full_like(p_plus, shots), p_plus, generator=self._generator)
        estimate = (2 * counts / shots - 1).to(exact.device, exact.dtype)
        return exact + (estimate - exact).detach()
