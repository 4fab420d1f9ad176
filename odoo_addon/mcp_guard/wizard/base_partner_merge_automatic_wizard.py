from odoo import models

from ..models.mcp_guard_common import refuse_trail_author_change, trail_authors


class BasePartnerMergeAutomaticWizard(models.TransientModel):
    _inherit = "base.partner.merge.automatic.wizard"

    def _merge(self, partner_ids, dst_partner=None, extra_checks=True):
        # the merge re-points every reference to the contacts merged away by SQL, the author of
        # trail messages included: none of them may be one (the contact kept may be)
        partners = self.env["res.partner"].browse(partner_ids).exists()
        sources = partners - dst_partner if dst_partner and dst_partner in partners else partners
        authors = trail_authors(self.env, sources)
        if dst_partner is None and len(authors) <= 1 and len(partners) > 1:
            # Odoo picks the contact kept itself: refuse unless it is the one author
            kept = self._get_ordered_partner(partners.ids)[-1]
            authors -= kept
        refuse_trail_author_change(self.env, authors)
        return super()._merge(partner_ids, dst_partner=dst_partner, extra_checks=extra_checks)
