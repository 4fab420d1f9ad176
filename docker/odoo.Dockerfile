# Odoo for the add-on: the official image of ODOO_SERIES plus the one Python package mcp_guard
# needs that the image lacks: pyicu-wheels (ICU's TR39 skeleton, to tell a requester from an
# approver; the manifest's external_dependencies). Built by docker-compose.yml.
ARG ODOO_SERIES=18.0
FROM odoo:${ODOO_SERIES}
USER root
RUN pip3 install --no-cache-dir --break-system-packages pyicu-wheels
USER odoo
