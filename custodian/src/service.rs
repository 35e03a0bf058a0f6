//! What the custodian does, as plain functions: describe itself, take a
//! deposit, release a share. The HTTP layer ([`crate::http`]) only moves
//! bytes in and out of these.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chrono::Utc;
use daylight_core::{leaf_hash, LeafIndex, SignerKey, VerifierKey};
use daylight_custody::{deposit, seal, Context, Deposit, Sealed, Slot};
use daylight_gate::{decide, parse_opening, verify_entry, Allowed, Policy};
use daylight_schemas::{EntryRef, Record, ShareRef, Signer};
use serde::{Deserialize, Serialize};

use crate::error::CustodianError;
use crate::log::{wait_for_proof, LogClient, WaitError};
use crate::store::{Store, Stored};

/// How long a release waits, by default, for the log to prove its receipt.
pub const DEFAULT_RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Everything a custodian needs to run.
pub struct Settings {
    /// Its key: signs receipts, opens deposits. Its name is the
    /// custodian's.
    pub signer: SignerKey,
    /// Its gate policy; its `daylight-provider` is the provider whose keys
    /// it holds shares of.
    pub policy: Policy,
    /// The keys whose deposits it takes.
    pub depositors: Vec<VerifierKey>,
    /// The log's URL (what `GET /api/v1/custodian` shows).
    pub log_url: String,
    /// The log, for receipts.
    pub log: Arc<dyn LogClient>,
    /// How long a release waits for the log to prove its receipt.
    pub receipt_timeout: Duration,
}

/// A custodian: its settings and its database.
pub struct Custodian {
    settings: Settings,
    /// The provider whose keys it holds (the policy's `daylight-provider`).
    provider: String,
    /// Its key as `name+keyid`: what receipts and sealed shares name.
    label: String,
    store: Store,
}

/// `GET /api/v1/custodian`: who the custodian is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// Its key's name.
    pub name: String,
    /// Its verifier key, `name+keyid+base64` (deposits are sealed to it).
    pub vkey: String,
    /// The provider whose keys it holds shares of.
    pub provider: String,
    /// The log its receipts go to.
    pub log: String,
    /// How many shares it holds.
    pub shares: u64,
}

/// `POST /api/v1/release`: a request bundle and the target asked about.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// The exact entry bytes, base64.
    pub entry: String,
    /// The entry's C2SP tlog-proof.
    pub proof: String,
    /// The agency's opening (`opening.json`), as JSON.
    pub opening: serde_json::Value,
    /// The target whose key share is asked for.
    pub target: String,
}

/// A receipt in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRef {
    /// Its index.
    pub index: u64,
    /// Its leaf hash, hex.
    pub leaf_hash: String,
}

/// The answer to a release: the share, sealed to the agency, and the
/// receipt that made it public.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Released {
    /// The custodian, `name+keyid` (part of the sealed box's context).
    pub custodian: String,
    /// The custodian's release receipt in the log.
    pub receipt: ReceiptRef,
    /// Which share (the receipt names the same).
    pub share: ShareRef,
    /// The share, sealed to the agency's registered key for
    /// [`Context::Release`] of this request and custodian.
    pub sealed: Sealed,
}

impl Custodian {
    /// A custodian with `settings` over `store`. The policy must name the
    /// provider (`daylight-provider`).
    pub fn new(settings: Settings, store: Store) -> Result<Custodian, CustodianError> {
        let provider = settings
            .policy
            .provider()
            .ok_or_else(|| {
                CustodianError::Internal(
                    "the custodian's policy names no provider: add a `daylight-provider NAME` line"
                        .into(),
                )
            })?
            .to_owned();
        let label = Signer::of(settings.signer.verifier()).to_string();
        Ok(Custodian {
            settings,
            provider,
            label,
            store,
        })
    }

    /// Its key as `name+keyid`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Who it is and how many shares it holds.
    pub fn info(&self) -> Result<Info, CustodianError> {
        let vkey = self.settings.signer.verifier();
        Ok(Info {
            name: vkey.name().to_string(),
            vkey: vkey.to_string(),
            provider: self.provider.clone(),
            log: self.settings.log_url.clone(),
            shares: self.store.share_count()?,
        })
    }

    /// Takes a deposit: from one of its depositors, signed, sealed to this
    /// custodian; kept unless its slot holds another share.
    pub fn deposit(&self, d: &Deposit) -> Result<Stored, CustodianError> {
        let (depositor, share) =
            deposit::accept(d, &self.settings.signer, &self.settings.depositors)?;
        let stored = self
            .store
            .put_share(&share, &Signer::of(&depositor).to_string())?;
        tracing::info!(
            depositor = %Signer::of(&depositor),
            key = %share.reference.key,
            index = share.reference.index,
            new = stored == Stored::New,
            "deposit"
        );
        Ok(stored)
    }

    /// Releases its share for a request, failing closed at each step: its
    /// gate allows the request for the target; it holds a share for it; its
    /// receipt (kept before it is sent, so a repeat sends the same bytes)
    /// is accepted by the log; the log serves a proof of the receipt that
    /// its policy believes (within the receipt timeout). Only then is the
    /// share sealed to the requesting agency's key.
    pub async fn release(&self, req: &ReleaseRequest) -> Result<Released, CustodianError> {
        let entry = BASE64
            .decode(req.entry.trim())
            .map_err(|e| CustodianError::Malformed(format!("entry: not base64 ({e})")))?;
        let now = Utc::now();
        let allowed = self.decide(&entry, req, now)?;
        let slot = Slot::of(&allowed.provider, &req.target);
        let share = self.store.share(&slot)?.ok_or(CustodianError::NoShare {
            provider: allowed.provider.clone(),
        })?;

        let request_leaf = allowed.leaf_hash.to_hex();
        // The receipt names the key by its tag for this request: its check
        // value would link every request about the same target.
        let named = share.reference.for_receipt(&allowed.leaf_hash);
        let receipt = self.store.receipt(&request_leaf, &slot, || {
            let record = Record::share_release(
                EntryRef::new(allowed.index, allowed.leaf_hash),
                named,
                now,
                now,
            )
            .and_then(|r| r.sign(&self.settings.signer, &allowed.origin))
            .map_err(|e| CustodianError::Internal(format!("making the receipt: {e}")))?;
            Ok(record.to_bytes())
        })?;

        let index = self
            .settings
            .log
            .submit(&receipt)
            .await
            .map_err(|e| CustodianError::ReceiptNotLogged(e.to_string()))?;
        if let Err(e) = self.store.receipt_logged(&request_leaf, &slot, index) {
            // The index is for the operator only; the release stands on the proof.
            tracing::warn!(index, error = %e, "could not note the receipt's index");
        }
        self.proven(&receipt, index).await?;

        let agency = self
            .settings
            .policy
            .agencies()
            .iter()
            .find(|k| Signer::of(k).to_string() == allowed.agency)
            .ok_or_else(|| {
                CustodianError::Internal(format!(
                    "the policy allowed {} but holds no key for it",
                    allowed.agency
                ))
            })?;
        let sealed = seal(
            &share,
            agency,
            &Context::Release {
                origin: allowed.origin.clone(),
                index: allowed.index.0,
                leaf_hash: request_leaf,
                custodian: self.label.clone(),
                slot: slot.to_hex(),
            },
        )?;
        tracing::info!(
            request = allowed.index.0,
            receipt = index,
            agency = %allowed.agency,
            share = share.reference.index,
            "released a share"
        );
        Ok(Released {
            custodian: self.label.clone(),
            receipt: ReceiptRef {
                index,
                leaf_hash: leaf_hash(&receipt).to_hex(),
            },
            share: named,
            sealed,
        })
    }

    /// The gate's decision under the custodian's policy, for the target.
    fn decide(
        &self,
        entry: &[u8],
        req: &ReleaseRequest,
        now: chrono::DateTime<Utc>,
    ) -> Result<Allowed, CustodianError> {
        let denied = |d: daylight_gate::Denied| CustodianError::Denied {
            reason: d.reason,
            detail: d.detail,
        };
        // The opening arrives as JSON inside JSON; the gate reads its text.
        let opening = serde_json::to_vec(&req.opening)
            .map_err(|e| CustodianError::Malformed(format!("opening: {e}")))?;
        let opening = parse_opening(&opening).map_err(denied)?;
        decide(
            &self.settings.policy,
            entry,
            req.proof.as_bytes(),
            Some((&opening, &req.target)),
            now,
        )
        .into_result()
        .map_err(denied)
    }

    /// Waits until the log serves a proof of `receipt` at `index` that the
    /// custodian's policy believes (log key, witness quorum, freshness), as
    /// a gate checks a request.
    async fn proven(&self, receipt: &[u8], index: u64) -> Result<(), CustodianError> {
        let policy = &self.settings.policy;
        let accept = |proof: &[u8]| {
            let included =
                verify_entry(policy, receipt, proof, Utc::now()).map_err(|d| d.to_string())?;
            if included.index != LeafIndex(index) {
                return Err(format!(
                    "the proof is for entry {}, not {index}",
                    included.index
                ));
            }
            Ok(())
        };
        wait_for_proof(
            self.settings.log.as_ref(),
            index,
            self.settings.receipt_timeout,
            accept,
        )
        .await
        .map_err(|e| CustodianError::ReceiptNotIncluded {
            index,
            why: match e {
                WaitError::Timeout { .. } => e.to_string(),
                WaitError::Log(l) => l.to_string(),
            },
        })
    }
}
