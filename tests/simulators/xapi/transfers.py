"""HTTP image transfers: /import, /export, /import_raw_vdi, /export_raw_vdi."""


def handle(request, path, query):
    request.send_bytes(501, b"not implemented yet\n")
