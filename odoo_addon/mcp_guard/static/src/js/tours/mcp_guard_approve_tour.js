/** @odoo-module **/

import { registry } from "@web/core/registry";
import { showAppsMenuItem } from "@mcp_guard/js/tours/tour_steps";

// An approver opens the pending request from the app menu and approves it.
registry.category("web_tour.tours").add("mcp_guard_approve_tour", {
    url: "/odoo",
    steps: () => [
        showAppsMenuItem(),
        {
            content: "Open the MCP Guard app",
            trigger: '.o_app[data-menu-xmlid="mcp_guard.menu_mcp_guard_root"]',
            run: "click",
        },
        {
            content: "Open the requests menu",
            trigger: '.o_main_navbar [data-menu-xmlid="mcp_guard.menu_mcp_approval_request"]',
            run: "click",
        },
        {
            content: "Open the pending disconnect request",
            trigger: ".o_list_renderer .o_data_row td[name=tool]:contains(odoo_disconnect)",
            run: "click",
        },
        {
            content: "Approve it",
            trigger: ".o_form_view .o_statusbar_buttons button[name=action_approve]",
            run: "click",
        },
        {
            content: "The request is approved",
            trigger: ".o_form_view .o_statusbar_status button.o_arrow_button_current:contains(Approved)",
        },
        {
            content: "The approve button is gone",
            trigger: ".o_form_view:not(:has(button[name=action_approve]))",
        },
    ],
});
