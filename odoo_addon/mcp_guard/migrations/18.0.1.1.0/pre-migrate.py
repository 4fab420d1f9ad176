"""18.0.1.1.0: audit events carry their sender; uuids are unique per sender, not globally."""


def migrate(cr, version):
    if not version:
        return
    cr.execute("ALTER TABLE mcp_audit_log ADD COLUMN IF NOT EXISTS sender_id integer")
    # the sender was always the creating user (record_batch wrote env.uid into create_uid)
    cr.execute("UPDATE mcp_audit_log SET sender_id = create_uid WHERE sender_id IS NULL")
    # the old global unique(uuid) would keep dropping one sender's events for another's
    cr.execute("ALTER TABLE mcp_audit_log DROP CONSTRAINT IF EXISTS mcp_audit_log_uuid_unique")
    cr.execute("DELETE FROM ir_model_constraint WHERE name = 'mcp_audit_log_uuid_unique'")
