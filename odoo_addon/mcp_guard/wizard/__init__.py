from . import mcp_approval_reject_wizard
from . import mcp_policy_wizard
from . import mcp_tool_rate_limit_wizard
from . import mcp_connection_change_wizard
from . import base_partner_merge_automatic_wizard
