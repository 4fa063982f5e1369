"""What tests and benchmarks share to start and observe a whole local stack, and to report figures.

Processed-message counts of a service come from `servicekit.metrics.processed_counts`.
"""

from testsupport.report import report
from testsupport.stack import publish_events, rolled_back, running_stack, stack_config, wait_until

__all__ = ["publish_events", "report", "rolled_back", "running_stack", "stack_config", "wait_until"]
