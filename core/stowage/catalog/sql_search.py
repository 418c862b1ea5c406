"""Search over assets and components (``/service/rest/v1/search``), shared by every SQL catalog."""

from __future__ import annotations

import json
from typing import Any, Sequence

from stowage.catalog.base import Page, decode_resume_key, encode_resume_key, row_id
from stowage.catalog.sql_rows import ASSET_COLUMNS, COMPONENT_COLUMNS, asset_from_row, component_from_row
from stowage.errors import BadRequest


class SqlSearch:
    """Keyset-paged search; mixed into :class:`~stowage.catalog.sql.SqlCatalog`, whose ``_execute`` it uses."""

    _execute: Any

    # -- search ---------------------------------------------------------------------------------------
    _SORT_COLUMNS = {"group": "COALESCE(c.grp, '')", "name": "COALESCE(c.name, '')",
                     "version": "COALESCE(c.version, '')", "repository": "{table}.repository"}

    def _search_where(self, table: str, *, repositories: Sequence[str] | None, sha256: str | None,
                      name: str | None, version: str | None, group: str | None,
                      keyword: str | None) -> tuple[list[str], list[Any]]:
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if repositories is not None:
            where.append(f"{table}.repository IN ({','.join('?' * len(repositories))})")
            params += list(repositories)
        if sha256:
            if table == "a":
                where.append("a.blob_sha256 = ?")
            else:
                where.append("EXISTS (SELECT 1 FROM assets x WHERE x.component_id = c.id AND x.blob_sha256 = ?)")
            params.append(sha256.lower())
        for column, value in (("c.name", name), ("c.version", version), ("c.grp", group)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if keyword:
            pattern = "%" + keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            if table == "a":
                where.append("(a.path LIKE ? ESCAPE '\\' OR c.name LIKE ? ESCAPE '\\')")
                params += [pattern, pattern]
            else:
                where.append("(c.name LIKE ? ESCAPE '\\' OR c.grp LIKE ? ESCAPE '\\' OR c.version LIKE ? ESCAPE '\\')")
                params += [pattern, pattern, pattern]
        return where, params

    def _search_page(self, sql_from: str, table: str, columns: str, where: list[str], params: list[Any],
                     sort: str | None, direction: str, continuation_token: str | None, limit: int,
                     make: Any) -> Page:
        descending = direction.lower() == "desc"
        if sort is not None and sort not in self._SORT_COLUMNS:
            raise BadRequest(f"cannot sort by {sort!r}; use one of {', '.join(sorted(self._SORT_COLUMNS))}")
        key = self._SORT_COLUMNS[sort].format(table=table) if sort else None
        compare = "<" if descending else ">"
        if continuation_token:
            try:
                after = json.loads(decode_resume_key(continuation_token))
                if key:
                    if not isinstance(after, list) or len(after) != 2:
                        raise ValueError(continuation_token)
                    value, last_id = str(after[0]), row_id(after[1])
                else:
                    last_id = row_id(after)
            except (ValueError, RecursionError):
                raise BadRequest(f"invalid continuationToken {continuation_token!r}") from None
            if key:
                where.append(f"({key} {compare} ? OR ({key} = ? AND {table}.id {compare} ?))")
                params += [value, value, last_id]
            else:
                where.append(f"{table}.id {compare} ?")
                params.append(last_id)
        order = "DESC" if descending else "ASC"
        order_by = f"{key} {order}, {table}.id {order}" if key else f"{table}.id {order}"
        select_key = f", {key}" if key else ", NULL"
        sql = (f"SELECT {columns}{select_key} FROM {sql_from} WHERE {' AND '.join(where)} "
               f"ORDER BY {order_by} LIMIT {int(limit) + 1}")
        rows = self._execute(sql, params).fetchall()
        token = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            item_id = last[0]
            token = encode_resume_key(json.dumps([last[-1], item_id] if key else item_id))
        return Page([make(row[:-1]) for row in rows], token)

    def search_assets(self, *, repositories: Sequence[str] | None = None, sha256: str | None = None,
                      name: str | None = None, version: str | None = None, group: str | None = None,
                      keyword: str | None = None, continuation_token: str | None = None,
                      limit: int = 50, sort: str | None = None, direction: str = "asc") -> Page:
        where, params = self._search_where("a", repositories=repositories, sha256=sha256, name=name,
                                           version=version, group=group, keyword=keyword)
        where.insert(0, "a.kind = 'content'")
        columns = ", ".join(f"a.{c.strip()}" for c in ASSET_COLUMNS.split(","))
        return self._search_page("assets a LEFT JOIN components c ON c.id = a.component_id", "a", columns,
                                 where, params, sort, direction, continuation_token, limit, asset_from_row)

    def search_components(self, *, repositories: Sequence[str] | None = None, sha256: str | None = None,
                          name: str | None = None, version: str | None = None, group: str | None = None,
                          keyword: str | None = None, continuation_token: str | None = None,
                          limit: int = 50, sort: str | None = None, direction: str = "asc") -> Page:
        where, params = self._search_where("c", repositories=repositories, sha256=sha256, name=name,
                                           version=version, group=group, keyword=keyword)
        columns = ", ".join(f"c.{c.strip()}" for c in COMPONENT_COLUMNS.split(","))
        return self._search_page("components c", "c", columns, where, params, sort, direction,
                                 continuation_token, limit, component_from_row)
