//! Looking one row up by the value of one or two columns, through a statement whose text is
//! built once.
//!
//! sea-query builds a `SELECT` of an entity again for every execution, and quotes every column's
//! name again each time (`"table"."column"`, through a fresh string per name): some 50,000 to
//! 90,000 instructions for one lookup of a dozen columns, counted with callgrind over a drain.
//! A webhook's trip makes a handful of such lookups (an organization, a lead, a call, a CRM
//! delivery). Here the text is built by sea-orm itself, the first time, from the same query
//! with the first values looked up; later lookups bind their own values to it.
//!
//! Worth it on the paths every webhook takes; elsewhere (operator reads, rare writes) sea-orm's
//! own `find_by_id(…).one(…)` reads just as well and is what the services use.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, IdenStatic, QueryFilter,
    QuerySelect, QueryTrait, Statement, Value,
};

/// The first row of `E` whose `columns` equal the given values, as
/// `E::find().filter(c1.eq(v1)).filter(c2.eq(v2)).one(db)` finds it (with `FOR UPDATE` when
/// `lock`, which SQLite ignores). A `NULL` value is looked up the slow way, as its query's text
/// differs (`IS NULL`).
pub async fn find_one<E, C, const N: usize>(
    db: &C,
    columns: [(E::Column, Value); N],
    lock: bool,
) -> Result<Option<E::Model>, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let backend = db.get_database_backend();
    let key = Key {
        entity: TypeId::of::<E>(),
        columns: columns.iter().map(|(c, _)| c.as_str().to_owned()).collect(),
        lock,
        backend: backend_id(backend),
    };
    let values: Vec<Value> = columns.iter().map(|(_, v)| v.clone()).collect();
    let known = TEXTS.read().ok().and_then(|texts| texts.get(&key).cloned());
    let statement = match known {
        Some(text) if !values.iter().any(is_null) => {
            let mut bound = values;
            bound.extend(text.tail.iter().cloned());
            Statement::from_sql_and_values(backend, text.sql.as_str(), bound)
        }
        _ => {
            let built = query::<E, N>(columns, lock).build(backend);
            if let Some(text) = Text::of(&built, &values)
                && let Ok(mut texts) = TEXTS.write()
            {
                texts.insert(key, Arc::new(text));
            }
            built
        }
    };
    E::find().from_raw_sql(statement).one(db).await
}

fn query<E: EntityTrait, const N: usize>(
    columns: [(E::Column, Value); N],
    lock: bool,
) -> sea_orm::Select<E> {
    let mut query = E::find();
    for (column, value) in columns {
        query = query.filter(column.eq(value));
    }
    if lock {
        query = query.lock_exclusive();
    }
    query.limit(1)
}

/// What identifies a lookup's text.
#[derive(PartialEq, Eq, Hash)]
struct Key {
    entity: TypeId,
    columns: Vec<String>,
    lock: bool,
    backend: u8,
}

/// A built lookup: its SQL, and the values sea-query bound after the looked-up ones (the
/// `LIMIT`'s 1).
struct Text {
    sql: String,
    tail: Vec<Value>,
}

impl Text {
    /// The reusable text of `built`, when its first values are exactly `looked_up` (so that
    /// other values can take their places) and none of them is `NULL`.
    fn of(built: &Statement, looked_up: &[Value]) -> Option<Text> {
        let bound = &built.values.as_ref()?.0;
        if looked_up.iter().any(is_null)
            || bound.len() < looked_up.len()
            || bound[..looked_up.len()] != *looked_up
        {
            return None;
        }
        Some(Text {
            sql: built.sql.clone(),
            tail: bound[looked_up.len()..].to_vec(),
        })
    }
}

fn is_null(value: &Value) -> bool {
    *value == value.as_null()
}

fn backend_id(backend: DbBackend) -> u8 {
    match backend {
        DbBackend::MySql => 0,
        DbBackend::Postgres => 1,
        DbBackend::Sqlite => 2,
    }
}

static TEXTS: LazyLock<RwLock<HashMap<Key, Arc<Text>>>> = LazyLock::new(RwLock::default);
