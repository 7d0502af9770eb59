"""What the trial app announces, for the apps above it to act on (docs/architecture.md, "Enrolment workflow").

Each is sent with `send` (not `send_robust`) inside the service's transaction, at the exact point where the
trial app used to call the apps above it: a receiver's error rolls the whole enrolment back, and the row-lock order
is today's. The receivers live in one place, `enrolment/receivers.py`; tests/architecture checks that each signal
has exactly those receivers connected.
"""
from django.dispatch import Signal

#: A case was enrolled (its allocation revealed). kwargs: case, actor. Makes the case's reads, queues its drafts.
case_enrolled = Signal()
#: A reader was enrolled (their arm revealed). kwargs: membership, actor. Makes reads of cases already enrolled.
reader_enrolled = Signal()
#: An expert joined the trial. kwargs: trial. Tops up rating panels that came out short.
expert_joined = Signal()
#: The trial's progress page/API asks the apps above for their counts. kwargs: trial. Receivers return a dict.
progress_requested = Signal()
#: An AI arm was added. kwargs: arm, actor, model_version (an inference ModelVersion, or None for the default).
#: The receiver (inference) records which model version drafts the arm, in add_arm's transaction.
ai_arm_added = Signal()
#: An AI arm is being removed during setup. kwargs: arm, actor, reason. The receiver (inference) removes the record
#: of which model version drafts it, in remove_arm's transaction, before the arm row goes.
ai_arm_removed = Signal()
