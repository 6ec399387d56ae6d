//! Multi-row statements for hot batched writes (webhook fan-out, finished deliveries): one
//! statement for many rows instead of one per row. The SQL text is built only from
//! placeholders (`$1, $2, …`), never from values, so it is safe to run as dynamic SQL.

use sqlx::AssertSqlSafe;

/// Most bound values one statement takes (below SQLite's and PostgreSQL's limits).
pub(crate) const MAX_VALUES: usize = 30_000;

/// `($start, …), (…)`: `rows` groups of `columns` numbered placeholders.
pub(crate) fn value_rows(rows: usize, columns: usize, start: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(start + row * columns + column).to_string());
        }
        sql.push(')');
    }
    sql
}

/// `$start, $start+1, …` for `count` values (an `IN (…)` list).
pub(crate) fn value_list(count: usize, start: usize) -> String {
    (start..start + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A statement built from `prefix`, placeholders and `suffix` (no values in the text).
pub(crate) fn statement(sql: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_row_by_row() {
        assert_eq!(value_rows(2, 3, 2), "($2, $3, $4), ($5, $6, $7)");
        assert_eq!(value_list(3, 1), "$1, $2, $3");
    }
}
