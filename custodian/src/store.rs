//! The custodian's database (SQLite, one file): the shares it holds, one
//! per slot, and the release receipts it made, one per request and slot,
//! written before they are submitted so that a release interrupted at any
//! point is either repeated with the same receipt or never happened.

use std::path::Path;
use std::sync::Mutex;

use daylight_custody::{Share, Slot};
use rusqlite::{params, Connection, OptionalExtension as _};

use crate::error::CustodianError;

/// What a deposit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// The share is new: stored.
    New,
    /// The same share was already held: nothing changed.
    Again,
}

/// The custodian's database.
pub struct Store {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS shares (
    slot TEXT PRIMARY KEY,
    share TEXT NOT NULL,
    depositor TEXT NOT NULL,
    deposited_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS receipts (
    request_leaf TEXT NOT NULL,
    slot TEXT NOT NULL,
    receipt BLOB NOT NULL,
    made_at TEXT NOT NULL,
    log_index INTEGER,
    PRIMARY KEY (request_leaf, slot)
);
";

impl Store {
    /// Opens (creating if missing) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, CustodianError> {
        let conn = Connection::open(path)
            .map_err(|e| CustodianError::Storage(format!("opening {}: {e}", path.display())))?;
        // WAL with a full sync at each commit: a receipt row must be on
        // disk before its receipt leaves the process.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, CustodianError> {
        self.conn
            .lock()
            .map_err(|_| CustodianError::Storage("database lock poisoned".into()))
    }

    /// Keeps `share` from `depositor` in its slot: [`Stored::New`] if the
    /// slot was empty, [`Stored::Again`] if it holds this very share, and
    /// [`CustodianError::SlotTaken`] if it holds another.
    pub fn put_share(&self, share: &Share, depositor: &str) -> Result<Stored, CustodianError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let slot = share.slot.to_hex();
        let held: Option<String> = tx
            .query_row("SELECT share FROM shares WHERE slot = ?1", [&slot], |r| {
                r.get(0)
            })
            .optional()?;
        let stored = match held {
            Some(text) => {
                let held = parse_share(&text)?;
                if held != *share {
                    return Err(CustodianError::SlotTaken {
                        held: held.reference.key.to_hex(),
                    });
                }
                Stored::Again
            }
            None => {
                tx.execute(
                    "INSERT INTO shares (slot, share, depositor, deposited_at) VALUES (?1, ?2, ?3, ?4)",
                    params![slot, share_text(share)?, depositor, now()],
                )?;
                Stored::New
            }
        };
        tx.commit()?;
        Ok(stored)
    }

    /// The share held in `slot`, if any.
    pub fn share(&self, slot: &Slot) -> Result<Option<Share>, CustodianError> {
        let text: Option<String> = self
            .conn()?
            .query_row(
                "SELECT share FROM shares WHERE slot = ?1",
                [slot.to_hex()],
                |r| r.get(0),
            )
            .optional()?;
        text.as_deref().map(parse_share).transpose()
    }

    /// How many shares are held.
    pub fn share_count(&self) -> Result<u64, CustodianError> {
        let n: i64 = self
            .conn()?
            .query_row("SELECT count(*) FROM shares", [], |r| r.get(0))?;
        u64::try_from(n).map_err(|e| CustodianError::Storage(e.to_string()))
    }

    /// The receipt for the request with leaf hash `request_leaf` (hex) and
    /// `slot`: the one made before if there is one, else `made()`, kept
    /// durably before this returns. So a release asked again, after a crash
    /// or a timeout, submits the same bytes (the log answers the same
    /// index) instead of a second receipt.
    pub fn receipt(
        &self,
        request_leaf: &str,
        slot: &Slot,
        made: impl FnOnce() -> Result<Vec<u8>, CustodianError>,
    ) -> Result<Vec<u8>, CustodianError> {
        let mut conn = self.conn()?;
        // One transaction: two releases of one request at once keep one
        // receipt between them.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let held: Option<Vec<u8>> = tx
            .query_row(
                "SELECT receipt FROM receipts WHERE request_leaf = ?1 AND slot = ?2",
                params![request_leaf, slot.to_hex()],
                |r| r.get(0),
            )
            .optional()?;
        let receipt = match held {
            Some(bytes) => bytes,
            None => {
                let bytes = made()?;
                tx.execute(
                    "INSERT INTO receipts (request_leaf, slot, receipt, made_at) VALUES (?1, ?2, ?3, ?4)",
                    params![request_leaf, slot.to_hex(), bytes, now()],
                )?;
                bytes
            }
        };
        tx.commit()?;
        Ok(receipt)
    }

    /// Notes the index the log gave the receipt for `request_leaf` and
    /// `slot` (for the operator; releases do not depend on it).
    pub fn receipt_logged(
        &self,
        request_leaf: &str,
        slot: &Slot,
        index: u64,
    ) -> Result<(), CustodianError> {
        let index = i64::try_from(index).map_err(|e| CustodianError::Storage(e.to_string()))?;
        self.conn()?.execute(
            "UPDATE receipts SET log_index = ?3 WHERE request_leaf = ?1 AND slot = ?2",
            params![request_leaf, slot.to_hex(), index],
        )?;
        Ok(())
    }

    /// How many receipts were made (logged or not).
    pub fn receipt_count(&self) -> Result<u64, CustodianError> {
        let n: i64 = self
            .conn()?
            .query_row("SELECT count(*) FROM receipts", [], |r| r.get(0))?;
        u64::try_from(n).map_err(|e| CustodianError::Storage(e.to_string()))
    }
}

fn share_text(share: &Share) -> Result<String, CustodianError> {
    String::from_utf8(share.to_json()).map_err(|e| CustodianError::Internal(e.to_string()))
}

fn parse_share(text: &str) -> Result<Share, CustodianError> {
    Share::from_json(text.as_bytes())
        .map_err(|e| CustodianError::Storage(format!("a stored share does not parse: {e}")))
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use daylight_custody::{split, EscrowKey};

    #[test]
    fn a_slot_keeps_one_share_and_a_request_one_receipt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("c.db")).unwrap();
        let slot = Slot::of("p", "t");
        let shares = split(&EscrowKey::generate().unwrap(), slot, 2, 3).unwrap();
        assert_eq!(store.put_share(&shares[0], "d").unwrap(), Stored::New);
        assert_eq!(store.put_share(&shares[0], "d").unwrap(), Stored::Again);
        assert!(matches!(
            store.put_share(&shares[1], "d"),
            Err(CustodianError::SlotTaken { .. })
        ));
        assert_eq!(store.share(&slot).unwrap(), Some(shares[0].clone()));
        assert_eq!(store.share(&Slot::of("p", "u")).unwrap(), None);
        assert_eq!(store.share_count().unwrap(), 1);

        let first = store.receipt("ab", &slot, || Ok(b"one".to_vec())).unwrap();
        let again = store.receipt("ab", &slot, || Ok(b"two".to_vec())).unwrap();
        assert_eq!(
            (first.as_slice(), again.as_slice()),
            (&b"one"[..], &b"one"[..])
        );
        // Reopened (a restart): the same receipt.
        drop(store);
        let store = Store::open(&dir.path().join("c.db")).unwrap();
        let after = store
            .receipt("ab", &slot, || Ok(b"three".to_vec()))
            .unwrap();
        assert_eq!(after, b"one");
        assert_eq!(store.receipt_count().unwrap(), 1);
    }
}
