"""A recording :class:`fence_virt.Dispatcher` for listener tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fence_virt.errors import BackendError
from fence_virt.protocol import HostState, Operation, Response
from fence_virt.types import DropKind, Target

__all__ = ["RECORDED_VMS", "RecordingDispatcher"]

#: what a :class:`RecordingDispatcher` lists unless told otherwise
RECORDED_VMS = (
    HostState("vm1", "11111111-1111-1111-1111-111111111111", 1),
    HostState("vm2", "22222222-2222-2222-2222-222222222222", 5),
)


class RecordingDispatcher:
    """Stands in for core's dispatcher in front of a listener: records every call, answers
    what the test says, never touches a backend.

    * ``fence`` answers ``answers[target.domain]`` if set, else ``response``; it records
      ``(operation, target)`` in ``calls`` (after running ``before_fence``, if set, so a test
      may assert something at the moment of the call);
    * ``hostlist`` records ``("hostlist", requester)`` and answers ``vms``, or raises
      :class:`~fence_virt.errors.BackendError` when ``fail_list`` is set;
    * ``dropped`` records ``(requester, kind, reason)`` in ``drops``;
    * ``should_answer`` is False for a domain in ``silent_for``, else True.
    """

    def __init__(
        self, response: Response = Response.SUCCESS, vms: Sequence[HostState] = RECORDED_VMS
    ) -> None:
        self.response = response
        self.answers: dict[str, Response] = {}
        self.vms = tuple(vms)
        self.fail_list = False
        self.before_fence: Callable[[], None] | None = None
        self.calls: list[tuple[Operation, Target] | tuple[str, str]] = []
        self.drops: list[tuple[str, DropKind, str]] = []
        self.silent_for: set[str] = set()

    @property
    def fenced(self) -> list[tuple[Operation, Target]]:
        """The ``fence`` calls, in order."""
        return [
            (op, target)
            for op, target in self.calls
            if isinstance(op, Operation) and isinstance(target, Target)
        ]

    async def fence(self, operation: Operation, target: Target) -> Response:
        if self.before_fence is not None:
            self.before_fence()
        self.calls.append((operation, target))
        return self.answers.get(target.domain, self.response)

    async def should_answer(self, operation: Operation, target: Target) -> bool:
        return target.domain not in self.silent_for

    def dropped(self, requester: str, kind: DropKind, reason: str) -> None:
        self.drops.append((requester, kind, reason))

    async def hostlist(self, requester: str) -> Sequence[HostState]:
        self.calls.append(("hostlist", requester))
        if self.fail_list:
            raise BackendError("hypervisor unreachable")
        return self.vms
