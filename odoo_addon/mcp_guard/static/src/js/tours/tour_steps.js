/** @odoo-module **/

// Steps shared by the tours. stepUtils moved between 18.0 (@web_tour/tour_service/tour_utils)
// and 19.0 (@web_tour/tour_utils); the one step the tours used is the same in both, so it is
// written here instead of importing either path.

// Open the apps menu of the community web client (stepUtils.showAppsMenuItem()).
export function showAppsMenuItem() {
    return {
        isActive: ["auto", "community", "desktop"],
        trigger: ".o_navbar_apps_menu button:enabled",
        tooltipPosition: "bottom",
        run: "click",
    };
}
