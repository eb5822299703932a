//! A lookup through a statement text built once finds what sea-orm's own query finds, for
//! every value looked up after the first, on SQLite and PostgreSQL.

use sea_orm::entity::prelude::*;
use sea_orm::{DatabaseConnection, QuerySelect, TransactionTrait};

use callmesh_runtime::db::{self, DatabaseUrl};
use callmesh_runtime::lookup::find_one;
use callmesh_testkit::{TestDatabase, backends};

mod item {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "lookup_items")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub organization_id: String,
        pub phone: Option<String>,
        pub turns: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

async fn items(database: &TestDatabase) -> DatabaseConnection {
    let url = DatabaseUrl::parse(database.url(), "TEST").expect("url");
    let db = db::connect(&url).await.expect("connect");
    db.execute_unprepared(
        "CREATE TABLE lookup_items (id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, \
         phone TEXT, turns INTEGER NOT NULL)",
    )
    .await
    .expect("create");
    db.execute_unprepared(
        "INSERT INTO lookup_items VALUES ('a', 'org-1', '+14155550100', 1), \
         ('b', 'org-1', '+14155550101', 2), ('c', 'org-2', '+14155550100', 3), \
         ('d', 'org-2', NULL, 4)",
    )
    .await
    .expect("insert");
    db
}

fn id(row: Option<item::Model>) -> Option<String> {
    row.map(|r| r.id)
}

#[tokio::test]
async fn each_lookup_finds_what_the_query_it_stands_for_finds() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let db = items(&database).await;

        // By one column: the first lookup builds the text, the others reuse it with their own
        // values (a text kept with the first value bound would find "a" each time).
        for wanted in ["a", "c", "b", "none", "d", "a"] {
            let found =
                find_one::<item::Entity, _, 1>(&db, [(item::Column::Id, wanted.into())], false)
                    .await
                    .expect("lookup");
            let expected = item::Entity::find_by_id(wanted)
                .one(&db)
                .await
                .expect("query");
            assert_eq!(found, expected, "{backend:?}: id {wanted}");
        }

        // By two columns, the values in the order given.
        for (organization, phone) in [
            ("org-1", "+14155550100"),
            ("org-2", "+14155550100"),
            ("org-1", "+14155550101"),
            ("org-2", "+14155550101"),
        ] {
            let found = find_one::<item::Entity, _, 2>(
                &db,
                [
                    (item::Column::OrganizationId, organization.into()),
                    (item::Column::Phone, phone.into()),
                ],
                false,
            )
            .await
            .expect("lookup");
            let expected = item::Entity::find()
                .filter(item::Column::OrganizationId.eq(organization))
                .filter(item::Column::Phone.eq(phone))
                .one(&db)
                .await
                .expect("query");
            assert_eq!(
                id(found),
                id(expected),
                "{backend:?}: {organization} {phone}"
            );
        }
        let expected_c = find_one::<item::Entity, _, 2>(
            &db,
            [
                (item::Column::OrganizationId, "org-2".into()),
                (item::Column::Phone, "+14155550100".into()),
            ],
            false,
        )
        .await
        .expect("lookup");
        assert_eq!(id(expected_c).as_deref(), Some("c"), "{backend:?}");

        // A NULL value is looked up as sea-orm's query has it, before and after a text for
        // the same column is kept.
        for phone in [None, Some("+14155550101"), None] {
            let found =
                find_one::<item::Entity, _, 1>(&db, [(item::Column::Phone, phone.into())], false)
                    .await
                    .expect("lookup");
            let expected = item::Entity::find()
                .filter(item::Column::Phone.eq(phone))
                .one(&db)
                .await
                .expect("query");
            assert_eq!(id(found), id(expected), "{backend:?}: phone {phone:?}");
        }

        // Locked for update inside a transaction (SQLite, whose writer is alone, has no such
        // lock and reads the row as it is).
        let txn = db.begin().await.expect("begin");
        for wanted in ["b", "d"] {
            let found =
                find_one::<item::Entity, _, 1>(&txn, [(item::Column::Id, wanted.into())], true)
                    .await
                    .expect("lookup");
            let expected = item::Entity::find_by_id(wanted)
                .lock_exclusive()
                .one(&txn)
                .await
                .expect("query");
            assert_eq!(found, expected, "{backend:?}: locked {wanted}");
            assert_eq!(id(found).as_deref(), Some(wanted), "{backend:?}");
        }
        txn.commit().await.expect("commit");
        drop(db);
    }
}
