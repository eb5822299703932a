//! Transcripts stored in a batch answer as each would alone: a new conversation is stored with
//! its turns, one stored before (or earlier in the same batch) is answered with what is stored.

use callmesh_context::memory::{Memory, Of};
use callmesh_context::model::{Channel, NewTranscript, Role, Turn};
use callmesh_migration_context::{Migrator, MigratorTrait};
use callmesh_runtime::db::{self, DatabaseUrl};
use callmesh_runtime::paging::Page;
use callmesh_testkit::{TestDatabase, backends};

async fn memory(database: &TestDatabase) -> Memory {
    let url = DatabaseUrl::parse(database.url(), "TEST").expect("url");
    let connection = db::connect(&url).await.expect("connect");
    Migrator::up(&connection, None).await.expect("migrate");
    Memory::new(connection)
}

/// A call `conversation` with `turns` turns, one of them empty (never stored).
fn call(conversation: &str, turns: usize) -> NewTranscript {
    let mut spoken: Vec<Turn> = (0..turns)
        .map(|i| Turn {
            role: if i % 2 == 0 { Role::Agent } else { Role::User },
            message: format!("{conversation} turn {i}"),
            time_in_call_secs: i as f64,
        })
        .collect();
    spoken.push(Turn {
        role: Role::User,
        message: "   ".into(),
        time_in_call_secs: turns as f64,
    });
    NewTranscript {
        organization_id: "org-1".into(),
        lead_id: format!("lead-{conversation}"),
        conversation_id: conversation.into(),
        channel: Channel::Voice,
        turns: spoken,
        summary: format!("{conversation} summary"),
        started_at: None,
    }
}

#[tokio::test]
async fn a_batch_of_transcripts_is_stored_as_each_alone_would_be() {
    for backend in backends().await {
        let database = TestDatabase::create(backend).await;
        let memory = memory(&database).await;
        let (turns, created) = memory
            .append_transcript("key-old", call("conv-old", 2))
            .await
            .expect("stored alone");
        assert_eq!((turns, created), (2, true));

        let batch = vec![
            ("key-a".to_owned(), call("conv-a", 3)),
            // Stored before: answered with the stored turn count, its new turns ignored.
            ("key-old-again".to_owned(), call("conv-old", 5)),
            ("key-b".to_owned(), call("conv-b", 1)),
            // The same conversation again later in the batch: stored once.
            ("key-a-again".to_owned(), call("conv-a", 4)),
        ];
        let answers: Vec<(u32, bool)> = memory
            .append_transcripts(&batch)
            .await
            .into_iter()
            .map(|answer| answer.expect("every item succeeds"))
            .collect();
        assert_eq!(
            answers,
            [(3, true), (2, false), (1, true), (3, false)],
            "{backend:?}"
        );

        for (conversation, turns) in [("conv-a", 3), ("conv-b", 1), ("conv-old", 2)] {
            let stored = memory.transcript(conversation).await.expect("transcript");
            assert_eq!(stored.turn_count, turns, "{backend:?} {conversation}");
            let messages = memory
                .messages(Of::Conversation(conversation), &Page::default())
                .await
                .expect("messages");
            let said: Vec<_> = messages.iter().map(|m| m.content.clone()).collect();
            let expected: Vec<_> = (0..turns)
                .map(|i| format!("{conversation} turn {i}"))
                .collect();
            assert_eq!(said, expected, "{backend:?}: turns stored once, in order");
        }
    }
}
