"""The delivery modes' compliance and crash tests, re-run on a 3-master Redis Cluster.

A representative subset (the whole modes suite takes about a minute more on the cluster): the
Job::Async compliance harness in every mode, a SIGKILLed worker's job done by another, reconnecting
clients, timeouts, strict priority, failures, the engine records behind the durable modes.
"""

from tests.cluster.on_cluster import *  # noqa: F403 - fixture overrides
from tests.queueengine.conftest import pair  # noqa: F401 - the fixture, on the cluster's redis_url
from tests.queueengine.test_dispatch import (  # noqa: F401 - tests re-run here
    test_client_timeout_leaks_nothing,
    test_failures_reach_the_client_and_free_the_slot,
    test_prefix_is_another_name_for_the_namespace,
    test_strict_priority_over_several_queues,
    test_submit_is_a_future_resolved_by_a_worker,
)
from tests.queueengine.test_dispatch_lifecycle import (  # noqa: F401
    test_a_reconnecting_client_still_gets_its_results,
)
from tests.queueengine.test_modes import (  # noqa: F401
    cleanup,
    test_compliance_harness,
    test_jobs_are_ordinary_engine_jobs,
    test_killed_worker_in_simple_mode_loses_the_job,
    test_killed_worker_job_is_done_by_another,
    test_recoverable_sweep_only_takes_old_claims,
)
