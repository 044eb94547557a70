//! The migrations, embedded in the binary: each backend's `migrations/<backend>/*.sql`, read
//! at compile time. sqlx's `migrate!` macro does the same, but it pulls sqlx's whole
//! proc-macro stack (and a second build of both drivers and of SQLite for the build host)
//! into every build; this list costs nothing. A test checks it against the directories, so
//! a migration cannot be added to one and forgotten here.

use std::{borrow::Cow, sync::LazyLock};

use sqlx::{
    SqlSafeStr,
    error::BoxDynError,
    migrate::{Migration, MigrationSource, MigrationType, Migrator},
};

/// Each backend's files of these names, embedded: one list, because the two backends'
/// migrations go in step (tests/schema.rs holds them to one logical schema).
macro_rules! embedded {
    ($($file:literal),* $(,)?) => {
        (
            &[$(($file, include_str!(concat!("../migrations/sqlite/", $file)))),*],
            &[$(($file, include_str!(concat!("../migrations/postgres/", $file)))),*],
        )
    };
}

/// Each migration's file name and SQL.
type Files = &'static [(&'static str, &'static str)];

const FILES: (Files, Files) = embedded!(
    "0001_models_and_tokens.sql",
    "0002_model_counts.sql",
    "0003_health_checks.sql",
    "0004_audit_events.sql",
    "0005_token_expiry_and_use.sql",
    "0006_count_generation.sql",
    "0007_status_mode_index.sql",
    "0008_token_names_per_organization.sql",
    "0009_replicas.sql",
    "0010_invariants_in_triggers.sql",
    "0011_search_index_and_slices.sql",
    "0012_model_changes.sql",
    "0013_catalog.sql",
    "0014_model_changes.sql",
);
pub(crate) const SQLITE_FILES: Files = FILES.0;
pub(crate) const POSTGRES_FILES: Files = FILES.1;

pub(crate) static SQLITE: LazyLock<Migrator> = LazyLock::new(|| migrator(SQLITE_FILES));
pub(crate) static POSTGRES: LazyLock<Migrator> = LazyLock::new(|| migrator(POSTGRES_FILES));

/// Migrations read as sqlx reads a directory: version and description from the file name
/// (`0003_health_checks.sql` is version 3, "health checks"), and a checksum of the SQL, so
/// databases migrated by the macro's migrations are recognized as the same.
#[derive(Debug)]
struct Embedded(Files);

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> futures::future::BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            self.0
                .iter()
                .map(|(file, sql)| {
                    let (version, rest) = file
                        .split_once('_')
                        .ok_or_else(|| format!("migration {file} has no version"))?;
                    let description = rest.trim_end_matches(".sql").replace('_', " ");
                    Ok(Migration::new(
                        version.parse()?,
                        Cow::Owned(description),
                        MigrationType::Simple,
                        sql.into_sql_str(),
                        sql.starts_with("-- no-transaction"),
                    ))
                })
                .collect()
        })
    }
}

fn migrator(files: Files) -> Migrator {
    // The source is in memory, so the future is ready at once.
    futures::executor::block_on(Migrator::new(Embedded(files)))
        .expect("the embedded migrations are well formed")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lists above hold every file of the directories, in order.
    #[test]
    fn every_migration_file_is_embedded() {
        for (dir, files) in [("sqlite", SQLITE_FILES), ("postgres", POSTGRES_FILES)] {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/").to_owned() + dir;
            let mut on_disk: Vec<String> = std::fs::read_dir(path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sql"))
                .collect();
            on_disk.sort();
            let listed: Vec<&str> = files.iter().map(|(f, _)| *f).collect();
            assert_eq!(on_disk, listed, "{dir}");
            let versions: Vec<i64> = migrator(files).iter().map(|m| m.version).collect();
            assert_eq!(
                versions,
                (1..=files.len() as i64).collect::<Vec<_>>(),
                "{dir}"
            );
        }
    }

    /// The checksums are the ones the released versions recorded in `_sqlx_migrations` when
    /// sqlx's `migrate!` embedded these files (SHA-384 of each file; the first 16 bytes here),
    /// so databases migrated before this list existed are recognized, and a released
    /// migration edited by mistake fails here before it fails a user's start-up.
    #[test]
    fn checksums_are_those_the_released_versions_recorded() {
        let released: [(&str, &[&str]); 2] = [
            (
                "sqlite",
                &[
                    "631a7f8dac0fb8fe75e9cc716e3c803d",
                    "b484c1db2d451792c56fef1ff81ee5a8",
                    "bf801ef6e0073d3a00c7d16595f39167",
                    "d067758183accba077deb3c6de26cbe7",
                    "5a04c1cd84950630997a557c859ebd5f",
                    "6a3e667a86b98decc6e5e45c4e073012",
                    "6a4f0479c8383f8ceceacf2cd30bf05d",
                ],
            ),
            (
                "postgres",
                &[
                    "717d6689388c1cca8901f325894ac778",
                    "fdd5d1dc3677b74cd87b8e8ed94fa00b",
                    "2cd2ccb6453f5d41180ccabcf1605787",
                    "7143ead99f99e0736ea8283536922678",
                    "d76424482a688680fb98eb737498ebfe",
                    "7ac2c752b58b9010a262b4e9fa12d0a7",
                    "6a4f0479c8383f8ceceacf2cd30bf05d",
                ],
            ),
        ];
        for (dir, digests) in released {
            let files = if dir == "sqlite" {
                SQLITE_FILES
            } else {
                POSTGRES_FILES
            };
            let m = migrator(files);
            for (migration, digest) in m.iter().zip(digests) {
                let hex: String = migration.checksum[..16]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                assert_eq!(&hex, digest, "{dir} {}", migration.version);
            }
            assert_eq!(m.iter().next().unwrap().description, "models and tokens");
        }
    }
}
