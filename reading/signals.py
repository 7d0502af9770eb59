"""What the reading app announces (docs/architecture.md, "Enrolment workflow"); receivers in enrolment/receivers.py."""
from django.dispatch import Signal

#: A read was submitted (sent inside submit_read's transaction, once per read). kwargs: read.
read_submitted = Signal()
