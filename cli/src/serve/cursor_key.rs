//! The cursor key of `orders serve`: `--cursor-key`, checked as it is parsed, else a random
//! key kept in a private file next to the database.

use std::path::Path;

use anyhow::Context;
use orders_handlers::lambda::check_cursor_key;

/// A `--cursor-key` that passed the Lambdas' rule ([`check_cursor_key`]).
#[derive(Clone)]
pub(super) struct CursorKey(pub(super) Vec<u8>);

/// Refuses a weak `--cursor-key` while the arguments are parsed, so the process exits (2, as
/// for any bad argument) before it opens or creates anything. Hand-written rather than a
/// closure because clap's own "invalid value" message would print the secret.
#[derive(Clone)]
pub(super) struct CursorKeyParser;

impl clap::builder::TypedValueParser for CursorKeyParser {
    type Value = CursorKey;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<CursorKey, clap::Error> {
        let key = value.as_encoded_bytes();
        check_cursor_key(key).map_err(|weak| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "--cursor-key (ORDERS_CURSOR_KEY) is {weak}. Give a random secret, e.g. \
                     `openssl rand -hex 32`, or none to have one kept in cursor.key\n"
                ),
            )
            .with_cmd(cmd)
        })?;
        Ok(CursorKey(key.to_vec()))
    }
}

/// The cursor key kept at `path`, made on first use: 32 random bytes, readable by the owner
/// only. A key file others can read is tightened to 0600 with a warning (whoever holds the key
/// can forge cursors); one shorter than the rule allows is an error, not silently replaced,
/// because replacing it would invalidate every cursor already handed out.
pub(super) fn load_or_create_cursor_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(key) => {
            restrict_to_owner(path)?;
            check_cursor_key(&key).map_err(|weak| {
                anyhow::anyhow!(
                    "the cursor key {} is {weak}: delete the file to have a new one made, or \
                     give --cursor-key",
                    path.display()
                )
            })?;
            Ok(key)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => create_cursor_key(path),
        Err(error) => {
            Err(error).with_context(|| format!("cannot read the cursor key {}", path.display()))
        }
    }
}

/// Writes a new key to a private temporary file, then links it into place: the key file is
/// never visible with wider permissions or half written, and if another process made one
/// meanwhile, that one wins and is used.
fn create_cursor_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;

    let key: [u8; 32] = rand::random();
    let temporary = path.with_extension(format!("key.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = private_file_options().open(&temporary)?;
        file.write_all(&key)?;
        file.sync_all()
    })();
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "made a new cursor key");
            Ok(key.to_vec())
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            load_or_create_cursor_key(path)
        }
        Err(error) => {
            Err(error).with_context(|| format!("cannot write the cursor key {}", path.display()))
        }
    }
}

/// `create_new`, and on Unix mode 0600 from the moment the file exists.
fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

#[cfg(unix)]
fn restrict_to_owner(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;

    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read the permissions of {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", mode & 0o777),
            "the cursor key was readable by others: setting it to 0600"
        );
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private (chmod 600)", path.display()))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_to_owner(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use clap::Parser;
    use clap::error::ErrorKind;
    use orders_handlers::lambda::MIN_CURSOR_KEY_LEN;

    use super::*;
    use crate::serve::ServeArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).map(|c| c.serve)
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_short_or_empty_cursor_key_is_a_usage_error_that_does_not_echo_it() {
        let too_short = "k".repeat(MIN_CURSOR_KEY_LEN - 1);
        for key in ["", "short-secret", too_short.as_str()] {
            let Err(error) = parse(&["--cursor-key", key]) else {
                panic!("a {}-byte key was accepted", key.len());
            };
            assert_eq!(error.kind(), ErrorKind::ValueValidation);
            assert_eq!(error.exit_code(), 2);
            let message = error.to_string();
            for named in ["--cursor-key", "ORDERS_CURSOR_KEY", "at least 32 bytes"] {
                assert!(message.contains(named), "{named} in {message}");
            }
            assert!(
                key.is_empty() || !message.contains(key),
                "the secret is echoed: {message}"
            );
        }

        let strong = "k".repeat(MIN_CURSOR_KEY_LEN);
        let args = parse(&["--cursor-key", &strong]).unwrap();
        assert_eq!(args.cursor_key.unwrap().0, strong.as_bytes());
    }

    #[test]
    fn a_new_key_file_is_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.key");
        let key = load_or_create_cursor_key(&path).unwrap();
        assert_eq!(key.len(), 32);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(load_or_create_cursor_key(&path).unwrap(), key);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind: {left:?}");
    }

    #[test]
    fn a_key_file_others_can_read_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.key");
        let key = [7u8; 40];
        std::fs::write(&path, key).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load_or_create_cursor_key(&path).unwrap(), key);
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_short_key_file_is_an_error_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.key");
        std::fs::write(&path, b"short").unwrap();
        let message = format!("{:#}", load_or_create_cursor_key(&path).unwrap_err());
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("5 bytes long"), "{message}");
        assert!(message.contains("at least 32 bytes"), "{message}");
        assert_eq!(std::fs::read(&path).unwrap(), b"short");
    }
}
