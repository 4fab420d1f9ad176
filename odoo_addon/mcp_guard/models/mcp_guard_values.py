from odoo import api, models
from odoo.exceptions import UserError

from .mcp_guard_common import check_browse_ids, check_field_values, check_query_fields


class McpGuardValues(models.AbstractModel):
    """Values and ids a client sends to the add-on's models, checked in one place (every model
    of the add-on inherits this, the trail models through mcp.guard.chatter): a value a field
    cannot hold (an integer given text, a list or a dict, a record id that is no id, a NUL
    character in a text) and ids that are no ids (1.5, True) are refused in one line naming the
    field or the ids, never answered with the ORM's or PostgreSQL's traceback."""

    _name = "mcp.guard.values"
    _description = "MCP Guard: the values a client sends, checked"

    @api.model
    def _search(self, domain, offset=0, limit=None, order=None, **kwargs):
        # every search (search, search_read, search_count, name_search, read_group's domain):
        # a secret cannot be searched or sorted by (mcp_guard_common.SECRET_QUERY_FIELDS)
        check_query_fields(self, domain, order)
        return super()._search(domain, offset=offset, limit=limit, order=order, **kwargs)

    @api.model
    def _read_group(self, domain, groupby=(), aggregates=(), having=(), offset=0, limit=None, order=None,
                    **kwargs):
        # read_group, formatted_read_group (19.0), web_read_group: nor grouped, aggregated by
        check_query_fields(self, having, order, groupby, aggregates)
        return super()._read_group(domain, groupby, aggregates, having, offset, limit, order, **kwargs)

    @api.model
    def _read_grouping_sets(self, domain, grouping_sets, aggregates=(), order=None, **kwargs):
        # 19.0's web_read_group and formatted_read_grouping_sets (18.0 has no such method)
        check_query_fields(self, None, order, [spec for specs in grouping_sets or () for spec in specs], aggregates)
        return super()._read_grouping_sets(domain, grouping_sets, aggregates, order, **kwargs)

    def browse(self, ids=()):
        # the ids of every RPC call on a record method (call_kw browses them first)
        check_browse_ids(self, ids)
        return super().browse(ids)

    def _refuse_computed(self, vals):
        """A value for a computed field without an inverse only lands in the ORM's cache, where a
        later check of the same transaction would read it (outside round 27a: load() of
        in_use_by_agent=False, then a replacement taken for a plain Save): refused in one line."""
        for name in vals if isinstance(vals, dict) else ():
            field = self._fields.get(name)
            if field is not None and field.compute and not field.store and not field.inverse:
                raise UserError(self.env._("%s is computed: it cannot be written.", name))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            check_field_values(self, vals)
            self._refuse_computed(vals)
        return super().create(vals_list)

    def write(self, vals):
        check_field_values(self, vals)
        self._refuse_computed(vals)
        return super().write(vals)

    @api.model
    def default_get(self, fields_list):
        # a context's default_<field> becomes a value of create without passing through it
        values = super().default_get(fields_list)
        check_field_values(self, values)
        return values
