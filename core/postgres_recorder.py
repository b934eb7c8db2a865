"""The PostgreSQL recorder of tapereader's event store (for more than one machine).

Same additions as :mod:`tapereader.core.sqlite_recorder`: a stream index, an exact
count, and a look-up of stored event ids. Importing this module needs psycopg
(the ``postgres`` extra).
"""

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

from tapereader.core.sqlite_recorder import chunks


class PostgresTapeRecorder(PostgresApplicationRecorder):
    """PostgreSQL recorder (table lock on insert: commit order is id order)."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._table = SQL("{0}.{1}").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name)
        )
        self.sql_create_statements.append(
            SQL("CREATE INDEX IF NOT EXISTS {0} ON {1} (topic, notification_id)").format(
                Identifier(f"{self.events_table_name}_topic_idx"), self._table
            )
        )

    def select_records(
        self, start: int, limit: int, stop: int | None = None, topic: str | None = None
    ) -> list[tuple[int, str, bytes]]:
        """``(position, stream, state)`` rows from ``start`` on: what replay needs, no more."""
        sql: Composed = SQL(
            "SELECT notification_id, topic, state FROM {0} WHERE notification_id >= %s"
        ).format(self._table)
        params: list[object] = [start]
        if stop is not None:
            sql += SQL(" AND notification_id <= %s")
            params.append(stop)
        if topic is not None:
            sql += SQL(" AND topic = %s")
            params.append(topic)
        sql += SQL(" ORDER BY notification_id LIMIT %s")
        params.append(limit)
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            curs.execute(sql, params, prepare=True)
            return [(r[0], r[1], bytes(r[2])) for r in curs.fetchall()]

    def count_events(self) -> int:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT COUNT(*) AS n FROM {0}").format(self._table))
            return int(curs.fetchone()["n"])

    def stored_ids(self, ids: Sequence[UUID]) -> set[UUID]:
        found: set[UUID] = set()
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            for chunk in chunks(ids):
                curs.execute(
                    SQL("SELECT originator_id FROM {0} WHERE originator_id = ANY(%s)").format(
                        self._table
                    ),
                    [list(chunk)],
                )
                found.update(row["originator_id"] for row in curs.fetchall())
        return found

    def list_streams(self) -> list[tuple[str, int]]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT topic, COUNT(*) AS n FROM {0} GROUP BY topic ORDER BY topic").format(
                    self._table
                )
            )
            return [(row["topic"], int(row["n"])) for row in curs.fetchall()]
