from . import mcp_approval_reject_wizard
from . import mcp_policy_wizard
