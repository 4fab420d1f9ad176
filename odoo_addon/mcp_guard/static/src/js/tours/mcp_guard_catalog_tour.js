/** @odoo-module **/

import { registry } from "@web/core/registry";
import { showAppsMenuItem } from "@mcp_guard/js/tours/tour_steps";

// Unfold a group of the grouped list unless it is already open (the folding of the
// sub-groups is not kept when coming back through the breadcrumb).
async function openGroup(actions) {
    if (!this.anchor.classList.contains("o_group_open")) {
        await actions.click();
    }
}

// A Manager reviews the tool catalog: a one-click exact rule for a destructive tool,
// then the acceptance of a changed tool definition.
registry.category("web_tour.tours").add("mcp_guard_catalog_tour", {
    url: "/odoo",
    steps: () => [
        showAppsMenuItem(),
        {
            content: "Open the MCP Guard app",
            trigger: '.o_app[data-menu-xmlid="mcp_guard.menu_mcp_guard_root"]',
            run: "click",
        },
        {
            content: "Open the tool catalog",
            trigger: '.o_main_navbar [data-menu-xmlid="mcp_guard.menu_mcp_tool_catalog"]',
            run: "click",
        },
        // the list, grouped by server then risk class
        {
            content: "The catalog is grouped by server: the notes group is open",
            trigger: ".o_list_renderer .o_group_header.o_group_open .o_group_name:contains(notes)",
        },
        {
            content: "Then by risk class: the read-only sub-group is listed",
            trigger: ".o_list_renderer .o_group_header .o_group_name:contains(Read-only)",
        },
        {
            content: "The write sub-group is listed",
            trigger: ".o_list_renderer .o_group_header .o_group_name:contains(Write)",
        },
        {
            content: "Open the destructive sub-group",
            trigger: ".o_list_renderer .o_group_header:has(.o_group_name:contains(Destructive))",
            run: openGroup,
        },
        {
            content: "Open purge_notes",
            trigger: ".o_list_renderer .o_data_row td[name=name]:contains(purge_notes)",
            run: "click",
        },
        // purge_notes: one-click exact rule
        {
            content: "purge_notes is destructive and denied by default",
            trigger: ".o_form_view:has(.o_field_widget[name=name]:contains(purge_notes)) .o_field_widget[name=rule_in_force]:contains(no exact rule)",
        },
        {
            content: "Require an approval for purge_notes",
            trigger: ".o_form_view .o_statusbar_buttons button[name=action_rule_require_approval]",
            run: "click",
        },
        {
            content: "An exact rule now requires an approval",
            trigger: ".o_form_view .o_field_widget[name=rule_in_force]:contains(require approval (exact rule))",
        },
        {
            content: "Back to the catalog",
            trigger: ".o_breadcrumb .breadcrumb-item.o_back_button:contains(Tool Catalog)",
            run: "click",
        },
        // write_note: changed definition
        {
            content: "Open the write sub-group",
            trigger: ".o_list_renderer .o_group_header:has(.o_group_name:contains(Write))",
            run: openGroup,
        },
        {
            content: "write_note is marked as changed",
            trigger: ".o_list_renderer .o_data_row:has(td[name=name]:contains(write_note)) td[name=state]:contains(Changed)",
        },
        {
            content: "Open write_note",
            trigger: ".o_list_renderer .o_data_row td[name=name]:contains(write_note)",
            run: "click",
        },
        {
            content: "write_note is in state Changed",
            trigger: ".o_form_view:has(.o_field_widget[name=name]:contains(write_note)) .o_statusbar_status button.o_arrow_button_current:contains(Changed)",
        },
        {
            content: "Show the definition change",
            trigger: ".o_form_view .o_notebook .nav-link[name=changed]",
            run: "click",
        },
        {
            content: "The pinned definition is shown",
            trigger: ".o_form_view .o_notebook .tab-pane.active .row .col-6 .o_field_widget[name=definition]:contains(Writes a note.)",
        },
        {
            content: "The new definition is shown beside it",
            trigger: ".o_form_view .o_notebook .tab-pane.active .row .col-6 .o_field_widget[name=pending_definition]:contains(Also mails it out.)",
        },
        {
            content: "Accept the new definition",
            trigger: ".o_form_view .o_statusbar_buttons button[name=action_accept_definition]",
            run: "click",
        },
        {
            content: "Confirm",
            trigger: ".modal .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "write_note is pinned again",
            trigger: ".o_form_view .o_statusbar_status button.o_arrow_button_current:contains(Pinned)",
        },
        {
            content: "The acceptance is signed by the Manager",
            trigger: ".o_form_view .o_field_widget[name=accepted_by]:contains(Tour Manager)",
        },
        {
            content: "The accept button is gone",
            trigger: ".o_form_view:not(:has(button[name=action_accept_definition]))",
        },
    ],
});
