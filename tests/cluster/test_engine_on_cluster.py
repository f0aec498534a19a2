"""The engine's conformance tests, re-run on a 3-master Redis Cluster (``redis+cluster://``)."""

from tests.cluster.on_cluster import *  # noqa: F403 - fixture overrides
from tests.queueengine.test_dependencies import *  # noqa: F403
from tests.queueengine.test_errors import *  # noqa: F403
from tests.queueengine.test_events_results import *  # noqa: F403
from tests.queueengine.test_lifecycle import *  # noqa: F403
from tests.queueengine.test_limits import *  # noqa: F403
from tests.queueengine.test_recurring import *  # noqa: F403
from tests.queueengine.test_retention import *  # noqa: F403
from tests.queueengine.test_stalls import *  # noqa: F403
from tests.queueengine.test_tags_tracking import *  # noqa: F403
