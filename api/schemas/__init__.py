"""Request and response bodies of the Prefect 3 REST API, as msgspec structs.

Field names and shapes follow Prefect 3.8 (prefect/server/schemas); request structs accept
unknown fields (the Prefect client sends fields older servers ignore).
"""
