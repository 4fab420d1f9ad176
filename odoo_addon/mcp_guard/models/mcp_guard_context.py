"""Context keys that would lift one of Odoo's own checks or trails (DESIGN.md, invariant 14).

An RPC client sends any context it likes. Checked in the Odoo 18 source, these keys change
what a create, write or unlink of ours does:

* ``_force_unlink`` (``MODULE_UNINSTALL_FLAG``): ``unlink`` skips every ``@api.ondelete``
  method and the restrict checks;
* ``default_<field>``: ``create`` fills a field the caller did not write, e.g. the state of a
  new approval request;
* ``tracking_disable`` / ``mail_notrack`` / ``mail_create_nolog``: ``mail.thread`` leaves no
  chatter trail of a create or a change;
* ``install_mode``: data-loading shortcuts of a module installation.

Our protected models run their ORM writes with these keys removed. ``active_test`` only
widens a search; the methods that look records up set it themselves.
"""

from odoo.tools import clean_context

LIFTING_KEYS = frozenset({"_force_unlink", "tracking_disable", "mail_notrack", "mail_create_nolog", "install_mode"})


def trusted(records):
    """``records`` with a context that keeps every check and trail of the ORM and mail."""
    context = clean_context(records.env.context)  # drops the default_* keys
    # a whole new context on purpose: keyword arguments could only add keys, not remove them
    return records.with_context(  # pylint: disable=context-overridden
        {key: value for key, value in context.items() if key not in LIFTING_KEYS}
    )
