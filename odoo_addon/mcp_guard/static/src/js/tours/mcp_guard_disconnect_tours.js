/** @odoo-module **/

import { registry } from "@web/core/registry";
import { showAppsMenuItem } from "@mcp_guard/js/tours/tour_steps";

// The owner of a connection asks to end it from the connection form.
registry.category("web_tour.tours").add("mcp_guard_request_disconnect_tour", {
    url: "/odoo",
    steps: () => [
        showAppsMenuItem(),
        {
            content: "Open the MCP Guard app",
            trigger: '.o_app[data-menu-xmlid="mcp_guard.menu_mcp_guard_root"]',
            run: "click",
        },
        {
            content: "Open the connections menu",
            trigger: '.o_main_navbar [data-menu-xmlid="mcp_guard.menu_mcp_connection"]',
            run: "click",
        },
        {
            content: "Open the connection crm",
            trigger: ".o_list_renderer .o_data_row td[name=alias]:contains(crm)",
            run: "click",
        },
        {
            content: "Ask to end it",
            trigger: ".o_form_view .o_statusbar_buttons button[name=action_request_disconnect]",
            run: "click",
        },
        {
            content: "Confirm",
            trigger: ".modal-footer button.btn-primary",
            run: "click",
        },
        {
            content: "The request form says what it asks and waits for another person",
            trigger: ".o_form_view .o_statusbar_status button.o_arrow_button_current:contains(Pending)",
        },
        {
            content: "The sentence names the connection",
            trigger: ".o_form_view .oe_title:contains(asks to remove connection crm)",
        },
        {
            content: "The requester cannot approve it",
            trigger: ".o_form_view:not(:has(button[name=action_approve]))",
        },
    ],
});

// An approver opens the request from their activities and approves it.
registry.category("web_tour.tours").add("mcp_guard_approve_from_activity_tour", {
    url: "/odoo",
    steps: () => [
        {
            content: "Open the activities",
            trigger: ".o_menu_systray i[aria-label=Activities]",
            run: "click",
        },
        {
            content: "Open the approval requests group",
            trigger: ".o-mail-ActivityGroup[data-model_name='mcp.approval.request']",
            run: "click",
        },
        {
            content: "Open the request",
            // the activity menu opens the list (or the kanban) of the requests assigned to me
            trigger: ".o_data_row td[name=connection_alias]:contains(crm), .o_kanban_record:contains(asks to remove connection crm)",
            run: "click",
        },
        {
            content: "The approver reads what they approve",
            trigger: ".o_form_view .oe_title:contains(asks to remove connection crm)",
        },
        {
            content: "Approve it",
            trigger: ".o_form_view .o_statusbar_buttons button[name=action_approve]",
            run: "click",
        },
        {
            content: "Odoo carried it out: the request is done",
            trigger: ".o_form_view .o_statusbar_status button.o_arrow_button_current:contains(Done)",
        },
    ],
});
