/** @odoo-module **/

import { Attachment } from "@mail/core/common/attachment_model";
import { Message } from "@mail/core/common/message_model";
import { patch } from "@web/core/utils/patch";

// The chatter of MCP Guard's records is their trail: the server refuses to edit or delete its
// messages and to delete the files posted with them (models/mail_message.py, ir_attachment.py),
// for the author and administrators alike. The web client does not offer them then: Edit and
// Delete show for an editable message only, and a posted file's delete for a deletable one
// (a file still in the composer, not yet posted, can be taken off as before).
// The same models as TRAIL_MODELS (models/mcp_guard_common.py; test_ui_polish.py compares).
export const TRAIL_MODELS = [
    "mcp.approval.request",
    "mcp.connection",
    "mcp.tool",
    "mcp.tool.rule",
    "mcp.tool.server",
];

function onTrail(message) {
    return Boolean(message) && TRAIL_MODELS.includes(message.thread?.model);
}

patch(Message.prototype, {
    get editable() {
        return onTrail(this) ? false : super.editable;
    },
});

patch(Attachment.prototype, {
    get isDeletable() {
        return onTrail(this.message) ? false : super.isDeletable;
    },
});
