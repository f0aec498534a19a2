"""The engine's conformance tests, re-run on a 3-master Redis Cluster (``redis+cluster://``).

The modules whose behaviour depends on where keys live and how calls travel: the job lifecycle,
dependencies, stalls and leases, limits and throttles, errors (argument checks, Lua fuzz),
events, replies and waiting. (Recurring jobs, retention and tags are the same Lua on any topology.)
"""

from tests.cluster.on_cluster import *  # noqa: F403 - fixture overrides
from tests.queueengine.test_dependencies import *  # noqa: F403
from tests.queueengine.test_errors import *  # noqa: F403
from tests.queueengine.test_events_results import *  # noqa: F403
from tests.queueengine.test_lifecycle import *  # noqa: F403
from tests.queueengine.test_limits import *  # noqa: F403
from tests.queueengine.test_stalls import *  # noqa: F403
