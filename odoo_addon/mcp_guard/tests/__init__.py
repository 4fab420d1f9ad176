from . import test_policy
from . import test_connection
from . import test_approval
from . import test_audit
from . import test_concurrency
from . import test_rpc
from . import test_catalog
from . import test_tour
