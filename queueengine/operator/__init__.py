"""The operator API: what dashboards and admin tools read and do, in few round trips.

* ``client.views`` (``views.py``): read-only pages (lists, a job, queues, workers, failure
  groups), each one bounded Lua call, batched into one round trip;
* ``client.operator`` (``api.py``): rows of many jobs (``rows.py``), bulk retry / move /
  requeue / cancel / timeout / priority / tags (``bulk.py``), failure-group chunks, and the
  dashboard's reserved keys (``reserved.py``: progress records, the live bridges' lease and
  interest set);
* name checks for operator forms (``names.py``: ``check_name``, ``check_names``,
  ``check_priority``), and the config page's entries (``client.config.options()``).

Dashboards use these, ``client.events.publish`` / ``client.events.stream`` and the public
``Client``/``Job``/``Queue`` API only: never the store (``queueengine.store``).
"""

from queueengine.operator.api import Operator
from queueengine.operator.bulk import BulkResult
from queueengine.operator.names import check_name, check_names, check_priority
from queueengine.operator.reserved import LiveCoordination, LiveSample, ProgressRecords
from queueengine.operator.rows import MAX_JIDS

__all__ = [
    "MAX_JIDS",
    "BulkResult",
    "LiveCoordination",
    "LiveSample",
    "Operator",
    "ProgressRecords",
    "check_name",
    "check_names",
    "check_priority",
]
