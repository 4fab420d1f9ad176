from . import mcp_guard_common
from . import mcp_guard_context
from . import mcp_tool_rule
from . import mcp_connection
from . import mcp_approval_request
from . import mcp_audit_log
from . import mcp_tool_server
from . import mcp_tool
