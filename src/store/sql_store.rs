//! The [`MetaStore`](super::MetaStore) both SQL stores share, written once as a macro over the
//! driver: SQLite and PostgreSQL run the same statements (numbered parameters, `ON CONFLICT`),
//! the same transactions and the same domain rules. What differs is said by the invoking store:
//! its pool and transaction types, how a transaction begins (`write_tx`), and `$lock`, the
//! clause that locks a row read to be changed (`""` on SQLite, whose write transaction already
//! holds the database's write lock; `" FOR NO KEY UPDATE"` on PostgreSQL).
//!
//! Every write transaction reads, and on PostgreSQL locks, the rows its rule depends on in one
//! order: the customer, then the container, then the file.

/// Implements `MetaStore` for `$store`, which has a field `pool: $pool` and an inherent
/// `async fn write_tx(&self) -> Result<$tx, MetaError>`.
macro_rules! sql_meta_store {
    ($store:ty, $pool:ty, $tx:ty, $lock:expr) => {
        use async_trait::async_trait;

        use $crate::domain::model::{Container, Customer, FileRecord, LoudnessInfo};
        use $crate::domain::quota::{self, Charge};
        use $crate::domain::{DomainError, Timestamp};
        use $crate::store::meta::{
            ContainerUpdate, CustomerDump, FileQuery, FileUpdate, MetaError, MetaStore, Page,
            Secret,
        };
        use $crate::store::rows::{self, select, Violation};

        async fn load_customer(tx: &mut $tx, id: &str) -> Result<Option<Customer>, MetaError> {
            let sql = format!("{}{}", rows::select::CUSTOMER, $lock);
            let row = sqlx::query(&sql).bind(id).fetch_optional(&mut **tx).await?;
            row.as_ref().map(rows::customer_row).transpose()
        }

        async fn load_container(
            tx: &mut $tx,
            customer_id: &str,
            sid: &str,
        ) -> Result<Option<Container>, MetaError> {
            let sql = format!("{}{}", rows::select::CONTAINER, $lock);
            let row = sqlx::query(&sql)
                .bind(sid)
                .bind(customer_id)
                .fetch_optional(&mut **tx)
                .await?;
            row.as_ref().map(rows::container_row).transpose()
        }

        /// Applies a threshold state to the container row.
        async fn set_threshold_state(
            tx: &mut $tx,
            sid: &str,
            st: quota::ThresholdState,
        ) -> Result<(), MetaError> {
            sqlx::query(rows::SET_THRESHOLD_STATE)
                .bind(st.total_bytes)
                .bind(st.total_files)
                .bind(st.reached_at.map(|t| t.0))
                .bind(sid)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// Takes one container slot of the customer, within `max_containers`.
        async fn take_container_slot(tx: &mut $tx, customer_id: &str) -> Result<(), MetaError> {
            let taken = sqlx::query(
                "UPDATE customers SET container_count = container_count + 1 WHERE id = $1 AND container_count < max_containers",
            )
            .bind(customer_id)
            .execute(&mut **tx)
            .await?;
            if taken.rows_affected() == 0 {
                return Err(rows::container_limit());
            }
            Ok(())
        }

        /// Adds (`sign` 1) or removes (`sign` -1) a file's bytes from its container's totals and,
        /// unless the container is external (the customer's own bucket), its customer's.
        async fn charge_totals(
            tx: &mut $tx,
            f: &FileRecord,
            container: &Container,
            sign: i64,
            now: Timestamp,
        ) -> Result<(), MetaError> {
            if !container.is_external() {
            sqlx::query("UPDATE customers SET total_bytes = total_bytes + $1, total_files = total_files + $2, date_modified = $3 WHERE id = $4")
                .bind(sign * f.size)
                .bind(sign)
                .bind(now.0)
                .bind(&f.customer_id)
                .execute(&mut **tx)
                .await?;
            }
            sqlx::query("UPDATE containers SET total_bytes = total_bytes + $1, total_files = total_files + $2 WHERE sid = $3")
                .bind(sign * f.size)
                .bind(sign)
                .bind(&f.container_sid)
                .execute(&mut **tx)
                .await?;
            Ok(())
        }

        /// Inserts a container row; an error goes to [`container_conflict`].
        async fn insert_container_row(tx: &mut $tx, c: &Container) -> Result<(), sqlx::Error> {
            let q = rows::bind_container!(sqlx::query(rows::INSERT_CONTAINER.as_str()), c);
            q.execute(&mut **tx).await.map(drop)
        }

        /// Writes a container's mutable settings and threshold state back; an error goes to
        /// [`container_conflict`].
        async fn save_container(tx: &mut $tx, c: &Container) -> Result<(), sqlx::Error> {
            let q = rows::bind_settings!(sqlx::query(rows::UPDATE_CONTAINER.as_str()), c)
                .bind(&c.container_sid);
            q.execute(&mut **tx).await.map(drop)
        }

        /// Ends a transaction a write failed in, before the conflict's holder is looked up on
        /// the pool: a failed PostgreSQL transaction answers nothing more, and SQLite's holds
        /// the write lock and a connection the lookup may be waiting for.
        async fn abandon(tx: $tx, e: sqlx::Error) -> Result<sqlx::Error, MetaError> {
            tx.rollback().await?;
            Ok(e)
        }

        /// Maps a unique-key violation on containers to the contract's error, naming the holder.
        async fn container_conflict(
            tx: $tx,
            pool: &$pool,
            e: sqlx::Error,
            c: &Container,
        ) -> MetaError {
            let e = match abandon(tx, e).await {
                Ok(e) => e,
                Err(failed) => return failed,
            };
            if rows::violation(&e) != Some(Violation::UniqueKeys) {
                return e.into();
            }
            match sqlx::query_scalar(
                "SELECT sid FROM containers WHERE customer_id = $1 AND unique_key = $2 AND sid <> $3",
            )
            .bind(&c.customer_id)
            .bind(rows::unique_key(c.unique, &c.keys))
            .bind(&c.container_sid)
            .fetch_optional(pool)
            .await
            {
                Ok(existing) => rows::keys_taken("container", existing),
                Err(e) => e.into(),
            }
        }

        /// Maps a unique-index violation on files to the contract's error.
        async fn file_conflict(
            tx: $tx,
            pool: &$pool,
            e: sqlx::Error,
            f: &FileRecord,
        ) -> MetaError {
            let e = match abandon(tx, e).await {
                Ok(e) => e,
                Err(failed) => return failed,
            };
            match rows::violation(&e) {
                Some(Violation::UniqueKeys) => match sqlx::query_scalar(
                    "SELECT sid FROM files WHERE customer_id = $1 AND unique_key = $2 AND sid <> $3",
                )
                .bind(&f.customer_id)
                .bind(rows::unique_key(f.unique, &f.keys))
                .bind(&f.file_sid)
                .fetch_optional(pool)
                .await
                {
                    Ok(existing) => rows::keys_taken("file", existing),
                    Err(e) => e.into(),
                },
                Some(Violation::AccessName) => rows::access_name_taken(),
                None => e.into(),
            }
        }

        impl $store {
            /// The customer's default (else oldest) container, if any.
            async fn first_container(&self, customer_id: &str) -> Result<Option<Container>, MetaError> {
                let row = sqlx::query(select::FIRST_CONTAINER)
                    .bind(customer_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(rows::container_row).transpose()
            }

            /// Locks the customer, the container and the file `sid` (in that order, see the module doc)
            /// and returns the file as it is now; `None` if it is gone or not `customer_id`'s.
            async fn lock_file(
                &self,
                tx: &mut $tx,
                customer_id: Option<&str>,
                sid: &str,
            ) -> Result<Option<(FileRecord, Container)>, MetaError> {
                // Where the file lives never changes, so an unlocked read names the rows to lock.
                let row = sqlx::query(select::FILE_BY_SID)
                    .bind(sid)
                    .fetch_optional(&mut **tx)
                    .await?;
                let Some(seen) = row.as_ref().map(rows::file_row).transpose()? else {
                    return Ok(None);
                };
                if customer_id.is_some_and(|c| c != seen.customer_id) {
                    return Ok(None);
                }
                load_customer(tx, &seen.customer_id).await?;
                let container = load_container(tx, &seen.customer_id, &seen.container_sid)
                    .await?
                    .ok_or_else(|| MetaError::Corrupt(format!("file {sid} without container")))?;
                let row = sqlx::query(&format!("{}{}", select::FILE_BY_SID, $lock))
                    .bind(sid)
                    .fetch_optional(&mut **tx)
                    .await?;
                let file = row.as_ref().map(rows::file_row).transpose()?;
                Ok(file.map(|f| (f, container)))
            }
        }

        #[async_trait]
        impl MetaStore for $store {
            async fn create_customer(&self, c: &Customer, token_hash: &str) -> Result<(), MetaError> {
                let mut tx = self.write_tx().await?;
                let inserted = rows::bind_customer!(sqlx::query(rows::INSERT_CUSTOMER.as_str()), c)
                    .execute(&mut *tx)
                    .await?;
                if inserted.rows_affected() == 0 {
                    return Err(sqlx::Error::Protocol(format!("customer {} exists", c.id)).into());
                }
                sqlx::query(rows::INSERT_TOKEN)
                    .bind(token_hash)
                    .bind(&c.id)
                    .bind(c.date_created.0)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn customer(&self, id: &str) -> Result<Option<Customer>, MetaError> {
                let row = sqlx::query(select::CUSTOMER)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(rows::customer_row).transpose()
            }

            async fn update_customer(
                &self,
                id: &str,
                quota_bytes: Option<i64>,
                max_containers: Option<i64>,
                now: Timestamp,
            ) -> Result<Option<Customer>, MetaError> {
                let mut tx = self.write_tx().await?;
                let Some(mut c) = load_customer(&mut tx, id).await? else {
                    return Ok(None);
                };
                if let Some(q) = quota_bytes {
                    c.quota_bytes = q;
                }
                if let Some(m) = max_containers {
                    c.max_containers = m;
                }
                c.date_modified = now;
                sqlx::query("UPDATE customers SET quota_bytes = $1, max_containers = $2, date_modified = $3 WHERE id = $4")
                    .bind(c.quota_bytes)
                    .bind(c.max_containers)
                    .bind(now.0)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Some(c))
            }

            async fn add_token(
                &self,
                customer_id: &str,
                token_hash: &str,
                now: Timestamp,
            ) -> Result<bool, MetaError> {
                let mut tx = self.write_tx().await?;
                if load_customer(&mut tx, customer_id).await?.is_none() {
                    return Ok(false);
                }
                sqlx::query(rows::INSERT_TOKEN)
                    .bind(token_hash)
                    .bind(customer_id)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn customer_by_token(&self, token_hash: &str) -> Result<Option<Customer>, MetaError> {
                let row = sqlx::query(select::CUSTOMER_BY_TOKEN)
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(rows::customer_row).transpose()
            }

            async fn create_container(&self, c: &Container) -> Result<(), MetaError> {
                let mut tx = self.write_tx().await?;
                // The UPDATE locks the customer's row and re-reads the count once it holds it.
                // An external container takes no slot: max_containers does not apply to it.
                if c.is_external() {
                    load_customer(&mut tx, &c.customer_id).await?;
                } else {
                    take_container_slot(&mut tx, &c.customer_id).await?;
                }
                if let Err(e) = insert_container_row(&mut tx, c).await {
                    return Err(container_conflict(tx, &self.pool, e, c).await);
                }
                tx.commit().await?;
                Ok(())
            }

            async fn default_container(
                &self,
                customer_id: &str,
                new: Container,
            ) -> Result<Container, MetaError> {
                if let Some(c) = self.first_container(customer_id).await? {
                    return Ok(c);
                }
                let mut tx = self.write_tx().await?;
                // Racing first uploads queue on the customer's row; the later ones find the container.
                if load_customer(&mut tx, customer_id).await?.is_none() {
                    return Err(DomainError::NotFound { what: "customer" }.into());
                }
                if let Some(row) = sqlx::query(select::FIRST_CONTAINER)
                    .bind(customer_id)
                    .fetch_optional(&mut *tx)
                    .await?
                {
                    return rows::container_row(&row);
                }
                take_container_slot(&mut tx, customer_id).await?;
                let c = Container {
                    is_default: true,
                    ..new
                };
                if let Err(e) = insert_container_row(&mut tx, &c).await {
                    return Err(container_conflict(tx, &self.pool, e, &c).await);
                }
                tx.commit().await?;
                Ok(c)
            }

            async fn container(
                &self,
                customer_id: &str,
                sid: &str,
            ) -> Result<Option<Container>, MetaError> {
                let row = sqlx::query(select::CONTAINER)
                    .bind(sid)
                    .bind(customer_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(rows::container_row).transpose()
            }

            async fn list_containers(
                &self,
                customer_id: &str,
                page: i64,
                limit: i64,
            ) -> Result<Page<Container>, MetaError> {
                let found = sqlx::query(select::CONTAINERS_PAGE)
                    .bind(customer_id)
                    .bind(limit)
                    .bind((page - 1).saturating_mul(limit))
                    .fetch_all(&self.pool)
                    .await?;
                let total: i64 = sqlx::query_scalar(select::CONTAINER_COUNT)
                    .bind(customer_id)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(Page {
                    items: found
                        .iter()
                        .map(rows::container_row)
                        .collect::<Result<_, _>>()?,
                    total_records: total,
                })
            }

            async fn has_external_container(&self, customer_id: &str) -> Result<bool, MetaError> {
                Ok(sqlx::query_scalar(select::HAS_EXTERNAL_CONTAINER)
                    .bind(customer_id)
                    .fetch_one(&self.pool)
                    .await?)
            }

            async fn update_container(
                &self,
                customer_id: &str,
                sid: &str,
                update: ContainerUpdate,
            ) -> Result<Option<Container>, MetaError> {
                let mut tx = self.write_tx().await?;
                let Some(owner) = load_customer(&mut tx, customer_id).await? else {
                    return Ok(None);
                };
                let Some(current) = load_container(&mut tx, customer_id, sid).await? else {
                    return Ok(None);
                };
                let next = rows::changed_container(current, &owner, update)?;
                if let Err(e) = save_container(&mut tx, &next).await {
                    return Err(container_conflict(tx, &self.pool, e, &next).await);
                }
                tx.commit().await?;
                Ok(Some(next))
            }

            async fn delete_container(&self, customer_id: &str, sid: &str) -> Result<bool, MetaError> {
                let mut tx = self.write_tx().await?;
                if load_customer(&mut tx, customer_id).await?.is_none() {
                    return Ok(false);
                }
                // An upload into it holds (or waits for) the same lock, so the count is final.
                let Some(container) = load_container(&mut tx, customer_id, sid).await? else {
                    return Ok(false);
                };
                let files: i64 = sqlx::query_scalar(select::FILES_IN_CONTAINER)
                    .bind(sid)
                    .fetch_one(&mut *tx)
                    .await?;
                if files > 0 {
                    return Err(rows::container_not_empty());
                }
                sqlx::query("DELETE FROM containers WHERE sid = $1")
                    .bind(sid)
                    .execute(&mut *tx)
                    .await?;
                if !container.is_external() {
                    sqlx::query("UPDATE customers SET container_count = container_count - 1 WHERE id = $1")
                        .bind(customer_id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn insert_file(&self, f: &FileRecord, now: Timestamp) -> Result<(), MetaError> {
                let media = rows::json_col(f.media.as_ref())?;
                let loudness = rows::json_col(f.loudness.as_ref())?;
                let mut tx = self.write_tx().await?;
                let customer = load_customer(&mut tx, &f.customer_id)
                    .await?
                    .ok_or(DomainError::NotFound { what: "customer" })?;
                let container = load_container(&mut tx, &f.customer_id, &f.container_sid)
                    .await?
                    .ok_or(DomainError::NotFound { what: "container" })?;
                let state = quota::admit(&customer, &container, Charge::of(f), now)?;
                charge_totals(&mut tx, f, &container, 1, now).await?;
                set_threshold_state(&mut tx, &f.container_sid, state).await?;
                let res = rows::bind_file!(sqlx::query(rows::INSERT_FILE.as_str()), f, media, loudness)
                    .execute(&mut *tx)
                    .await;
                if let Err(e) = res {
                    return Err(file_conflict(tx, &self.pool, e, f).await);
                }
                tx.commit().await?;
                Ok(())
            }

            async fn file(&self, customer_id: &str, sid: &str) -> Result<Option<FileRecord>, MetaError> {
                let row = sqlx::query(select::FILE)
                    .bind(sid)
                    .bind(customer_id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(rows::file_row).transpose()
            }

            async fn file_by_sid(&self, sid: &str) -> Result<Option<FileRecord>, MetaError> {
                let row = sqlx::query(select::FILE_BY_SID)
                    .bind(sid)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(rows::file_row).transpose()
            }

            async fn published_file(&self, key: &str) -> Result<Option<FileRecord>, MetaError> {
                let row = sqlx::query(select::PUBLISHED)
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(rows::file_row).transpose()
            }

            async fn list_files(&self, q: &FileQuery) -> Result<Page<FileRecord>, MetaError> {
                let (filter, args) = rows::file_filter(q);
                let count_sql = format!("SELECT count(*){filter}");
                let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
                for a in &args {
                    count = count.bind(*a);
                }
                let total = count.fetch_one(&self.pool).await?;
                let sql = rows::file_page_sql(&filter, args.len());
                let mut found = sqlx::query(&sql);
                for a in &args {
                    found = found.bind(*a);
                }
                let found = found
                    .bind(q.limit)
                    .bind((q.page - 1).saturating_mul(q.limit))
                    .fetch_all(&self.pool)
                    .await?;
                Ok(Page {
                    items: found.iter().map(rows::file_row).collect::<Result<_, _>>()?,
                    total_records: total,
                })
            }

            async fn update_file(
                &self,
                customer_id: &str,
                sid: &str,
                update: FileUpdate,
            ) -> Result<Option<FileRecord>, MetaError> {
                let mut tx = self.write_tx().await?;
                let Some((current, container)) = self.lock_file(&mut tx, Some(customer_id), sid).await?
                else {
                    return Ok(None);
                };
                let was_included = current.threshold_include;
                let next = update(current)?;
                if next.threshold_include != was_included {
                    let state = quota::set_included(
                        &container,
                        next.size,
                        next.threshold_include,
                        next.date_modified,
                    )?;
                    set_threshold_state(&mut tx, &container.container_sid, state).await?;
                }
                let res = rows::bind_file_changes!(sqlx::query(rows::UPDATE_FILE), next)
                    .execute(&mut *tx)
                    .await;
                if let Err(e) = res {
                    return Err(file_conflict(tx, &self.pool, e, &next).await);
                }
                tx.commit().await?;
                Ok(Some(next))
            }

            async fn delete_file(
                &self,
                customer_id: Option<&str>,
                sid: &str,
            ) -> Result<Option<FileRecord>, MetaError> {
                let mut tx = self.write_tx().await?;
                // Locked, so of two racing deletes only one finds the file and releases its totals.
                let Some((file, container)) = self.lock_file(&mut tx, customer_id, sid).await? else {
                    return Ok(None);
                };
                sqlx::query("DELETE FROM files WHERE sid = $1")
                    .bind(sid)
                    .execute(&mut *tx)
                    .await?;
                charge_totals(&mut tx, &file, &container, -1, Timestamp::now()).await?;
                set_threshold_state(
                    &mut tx,
                    &file.container_sid,
                    quota::release(&container, file.size, file.threshold_include),
                )
                .await?;
                tx.commit().await?;
                Ok(Some(file))
            }

            async fn touch_file(&self, sid: &str, now: Timestamp) -> Result<(), MetaError> {
                sqlx::query("UPDATE files SET date_last_accessed = $1 WHERE sid = $2")
                    .bind(now.0)
                    .bind(sid)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn all_blob_keys(&self) -> Result<Vec<(String, String)>, MetaError> {
                Ok(sqlx::query_as(select::BLOB_KEYS)
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn recompute_totals(&self) -> Result<(), MetaError> {
                let mut tx = self.write_tx().await?;
                // Other nodes keep serving while this one starts: hold every customer and container
                // (in the writers' order) so no write is in flight while the sums are taken; each
                // statement after the locks reads what they committed.
                sqlx::query(&format!("SELECT id FROM customers ORDER BY id{}", $lock))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!("SELECT sid FROM containers ORDER BY sid{}", $lock))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(rows::RECOMPUTE_CONTAINERS)
                    .bind(true)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(rows::RECOMPUTE_CUSTOMERS)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn storage_totals(&self) -> Result<crate::metrics::StorageTotals, MetaError> {
                let (customers, files, bytes): (i64, i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(total_files), 0) AS BIGINT),
                            CAST(COALESCE(SUM(total_bytes), 0) AS BIGINT) FROM customers",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok(crate::metrics::StorageTotals {
                    customers,
                    files,
                    bytes,
                })
            }

            async fn expired_files(
                &self,
                now: Timestamp,
                limit: i64,
            ) -> Result<Vec<FileRecord>, MetaError> {
                let found = sqlx::query(select::EXPIRED)
                    .bind(now.0)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                found.iter().map(rows::file_row).collect()
            }

            async fn containers_over_threshold(&self) -> Result<Vec<Container>, MetaError> {
                let found = sqlx::query(select::OVER_THRESHOLD)
                    .fetch_all(&self.pool)
                    .await?;
                found.iter().map(rows::container_row).collect()
            }

            async fn lru_files(
                &self,
                container_sid: &str,
                limit: i64,
            ) -> Result<Vec<FileRecord>, MetaError> {
                let found = sqlx::query(select::LRU)
                    .bind(container_sid)
                    .bind(true)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                found.iter().map(rows::file_row).collect()
            }

            async fn secret_or_insert(
                &self,
                name: &str,
                candidate: &[u8],
            ) -> Result<(Vec<u8>, bool), MetaError> {
                // ON CONFLICT waits for a racing insert to commit, so the SELECT that follows (a new
                // snapshot) sees whichever value was written first.
                let inserted = sqlx::query(rows::INSERT_SECRET)
                    .bind(name)
                    .bind(candidate)
                    .execute(&self.pool)
                    .await?
                    .rows_affected()
                    == 1;
                let stored: Vec<u8> = sqlx::query_scalar(select::SECRET)
                    .bind(name)
                    .fetch_one(&self.pool)
                    .await?;
                Ok((stored, inserted))
            }

            async fn record_copy(
                &self,
                copy_key: &str,
                blob_key: &str,
                size: i64,
                now: Timestamp,
            ) -> Result<bool, MetaError> {
                Ok(sqlx::query(
                    "INSERT INTO copies (copy_key, blob_key, size, date_created)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (copy_key) DO NOTHING",
                )
                .bind(copy_key)
                .bind(blob_key)
                .bind(size)
                .bind(now.0)
                .execute(&self.pool)
                .await?
                .rows_affected()
                    == 1)
            }

            async fn record_loudness(
                &self,
                blob_key: &str,
                loudness: &LoudnessInfo,
            ) -> Result<(), MetaError> {
                let json = rows::json_col(Some(loudness))?;
                sqlx::query("UPDATE files SET loudness = $1 WHERE blob_key = $2")
                    .bind(json)
                    .bind(blob_key)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn take_copies(&self, blob_key: &str) -> Result<Vec<String>, MetaError> {
                Ok(
                    sqlx::query_scalar("DELETE FROM copies WHERE blob_key = $1 RETURNING copy_key")
                        .bind(blob_key)
                        .fetch_all(&self.pool)
                        .await?,
                )
            }

            async fn all_copy_keys(&self) -> Result<Vec<String>, MetaError> {
                Ok(sqlx::query_scalar("SELECT copy_key FROM copies")
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn trim_copies(&self, limit: i64) -> Result<Vec<String>, MetaError> {
                // Copies of files that are gone first, then the oldest while over the limit.
                let mut gone: Vec<String> = sqlx::query_scalar(
                    "DELETE FROM copies WHERE NOT EXISTS
                       (SELECT 1 FROM files WHERE files.blob_key = copies.blob_key)
                     RETURNING copy_key",
                )
                .fetch_all(&self.pool)
                .await?;
                let total: i64 = sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM copies")
                    .fetch_one(&self.pool)
                    .await?;
                let mut excess = total - limit;
                if excess <= 0 {
                    return Ok(gone);
                }
                let oldest: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT copy_key, size FROM copies ORDER BY date_created, copy_key",
                )
                .fetch_all(&self.pool)
                .await?;
                for (key, size) in oldest {
                    if excess <= 0 {
                        break;
                    }
                    let removed = sqlx::query("DELETE FROM copies WHERE copy_key = $1")
                        .bind(&key)
                        .execute(&self.pool)
                        .await?
                        .rows_affected();
                    if removed == 1 {
                        excess -= size;
                        gone.push(key);
                    }
                }
                Ok(gone)
            }

            async fn export_customers(&self) -> Result<Vec<CustomerDump>, MetaError> {
                let customers = sqlx::query(select::ALL_CUSTOMERS)
                    .fetch_all(&self.pool)
                    .await?;
                let tokens = sqlx::query(select::ALL_TOKENS)
                    .fetch_all(&self.pool)
                    .await?;
                rows::customer_dumps(&customers, &tokens)
            }

            async fn export_containers(&self) -> Result<Vec<Container>, MetaError> {
                let found = sqlx::query(select::ALL_CONTAINERS)
                    .fetch_all(&self.pool)
                    .await?;
                found.iter().map(rows::container_row).collect()
            }

            async fn export_files_after(
                &self,
                after: Option<&str>,
                limit: i64,
            ) -> Result<Vec<FileRecord>, MetaError> {
                let found = sqlx::query(select::FILES_AFTER)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                found.iter().map(rows::file_row).collect()
            }

            async fn export_secrets(&self) -> Result<Vec<Secret>, MetaError> {
                let found = sqlx::query(select::ALL_SECRETS)
                    .fetch_all(&self.pool)
                    .await?;
                found.iter().map(rows::secret_row).collect()
            }

            async fn import_customer(&self, c: &CustomerDump) -> Result<bool, MetaError> {
                let mut tx = self.write_tx().await?;
                let new = rows::bind_customer!(sqlx::query(rows::INSERT_CUSTOMER.as_str()), c.customer)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                for t in &c.tokens {
                    sqlx::query(rows::INSERT_TOKEN)
                        .bind(&t.token_hash)
                        .bind(&t.customer_id)
                        .bind(t.date_created.0)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(new)
            }

            async fn import_container(&self, c: &Container) -> Result<bool, MetaError> {
                let done = rows::bind_container!(sqlx::query(rows::IMPORT_CONTAINER.as_str()), c)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn import_file(&self, f: &FileRecord) -> Result<bool, MetaError> {
                let media = rows::json_col(f.media.as_ref())?;
                let loudness = rows::json_col(f.loudness.as_ref())?;
                let done = rows::bind_file!(sqlx::query(rows::IMPORT_FILE.as_str()), f, media, loudness)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn import_secret(&self, s: &Secret) -> Result<bool, MetaError> {
                let done = sqlx::query(rows::INSERT_SECRET)
                    .bind(&s.name)
                    .bind(&s.value)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(super) use sql_meta_store;
