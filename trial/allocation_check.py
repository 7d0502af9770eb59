"""After lock: regenerate the sealed allocation list from its disclosed seed and check it against the commitment
and against the stored list and revealed allocations (`manage.py verify_allocation`; docs/design.md section 5)."""
from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import Conflict

from .models import AllocationList, AllocationSlot, Trial
from .randomisation import Slot, generate_stratum, list_commitment

MAX_PROBLEMS = 20


@dataclass
class AllocationCheck:
    """`ok` when the commitment, the stored list and every revealed allocation agree with the disclosed seed;
    `problems` names each mismatch (at most MAX_PROBLEMS are listed, `n_problems` counts all)."""

    trial_code: str
    scheme: str
    strata: int = 0
    slots_checked: int = 0
    commitment_ok: bool = False
    problems: list[str] = field(default_factory=list)
    n_problems: int = 0

    @property
    def ok(self) -> bool:
        return self.commitment_ok and self.n_problems == 0

    def add(self, problem: str) -> None:
        self.n_problems += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


def _stored_slots(alist: AllocationList) -> dict[str, list[AllocationSlot]]:
    out: dict[str, list[AllocationSlot]] = {s.key: [] for s in alist.strata.all()}
    slots = (AllocationSlot.objects.filter(stratum__allocation_list=alist)
             .select_related("stratum", "arm", "case", "membership").order_by("stratum__key", "sequence"))
    for slot in slots:
        out[slot.stratum.key].append(slot)
    return out


def _compare_stratum(check: AllocationCheck, key: str, stored: list[AllocationSlot], expected: list[Slot]) -> None:
    if len(stored) != len(expected):
        check.add(f"stratum {key}: {len(stored)} slots stored, the seed gives {len(expected)}")
    for slot, exp in zip(stored, expected, strict=False):
        check.slots_checked += 1
        got = (slot.sequence, slot.block_index, slot.block_size, slot.arm.code)
        want = (exp.sequence, exp.block_index, exp.block_size, exp.arm)
        if got != want:
            check.add(f"stratum {key}, slot {slot.sequence}: stored arm {got[3]} (block {got[1]}, size {got[2]}), "
                      f"the seed gives arm {want[3]} (block {want[1]}, size {want[2]})")
        unit_arm = slot.case.arm_id if slot.case_id else (slot.membership.arm_id if slot.membership_id else None)
        if slot.revealed_at and unit_arm is not None and unit_arm != slot.arm_id:
            unit = f"case {slot.case.code}" if slot.case_id else f"reader membership {slot.membership_id}"
            check.add(f"stratum {key}, slot {slot.sequence}: {unit} is in another arm than its allocation")


def verify_allocation(trial: Trial) -> AllocationCheck:
    """Recompute the list and its commitment from the disclosed seed and salt. Only after lock: before, the seed
    stays sealed."""
    trial = Trial.objects.get(pk=trial.pk)
    if not trial.is_locked:
        raise Conflict(f"Trial {trial.code} is not locked: the seed stays sealed until lock.")
    alist = AllocationList.objects.filter(trial=trial).first()
    if alist is None:
        raise Conflict(f"Trial {trial.code} has no allocation list.")
    check = AllocationCheck(trial_code=trial.code, scheme=alist.scheme)
    stored = _stored_slots(alist)
    check.strata = len(stored)
    regenerated = {key: generate_stratum(alist.seed, key, alist.ratio, alist.block_sizes, alist.slots_per_stratum,
                                         scheme=alist.scheme) for key in stored}
    check.commitment_ok = list_commitment(alist.salt, alist.seed, regenerated, scheme=alist.scheme) == alist.list_hash
    if not check.commitment_ok:
        check.add("the commitment does not match the list regenerated from the disclosed seed and salt "
                  "(seed, salt, block sizes, ratio or strata differ from what was sealed)")
    for key, slots in stored.items():
        _compare_stratum(check, key, slots, regenerated[key])
    return check
