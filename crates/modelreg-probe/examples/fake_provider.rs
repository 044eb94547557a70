//! The fake provider of `modelreg_probe::testing` as a process, for tests that drive a real
//! `modelreg serve` from outside (the console's browser tests): a real HTTP server on
//! 127.0.0.1 that answers like each provider's model list.
//!
//! ```sh
//! cargo build -p modelreg-probe --example fake_provider
//! target/debug/examples/fake_provider     # prints: listening on http://127.0.0.1:PORT
//! ```
//!
//! It prints that one line on stdout once it accepts connections, then serves until it is
//! killed (SIGTERM or Ctrl-C end it with status 0). It logs nothing. The port is chosen by the
//! system: read it from the line.
//!
//! # What makes a verification pass or fail
//!
//! `BASE` is the printed `http://127.0.0.1:PORT`. A default `modelreg serve` may probe it:
//! only link-local and metadata addresses are denied unless `MODELREG_PROBE_DENY` says
//! otherwise (loopback is allowed on purpose, for Ollama and vLLM on the same host).
//! The only key the fake accepts is `good-key-123` (`testing::GOOD_KEY`).
//!
//! Passes (`"verified": true`; a stored model becomes `ACTIVE`):
//!
//! | litellm_model | api_base | credentials | message |
//! |---|---|---|---|
//! | `openai/gpt-4o` (or `openai/gpt-4o-mini`, `openai/llama3-70b`) | `BASE/openai/v1` | `{"api_key": "good-key-123"}` | `credentials accepted; gpt-4o is available` |
//! | `anthropic/claude-3-5-sonnet` | `BASE/anthropic` | `{"api_key": "good-key-123"}` | `credentials accepted; claude-3-5-sonnet is available` |
//! | `gemini/gemini-1.5-pro` | `BASE/gemini` | `{"api_key": "good-key-123"}` | `credentials accepted; gemini-1.5-pro is available` |
//! | `azure/any-deployment` | `BASE/azure` | `{"api_key": "good-key-123"}` | `credentials accepted (the deployment name is not checked)` |
//! | `ollama/llama3` | `BASE/ollama` | any, e.g. `{"api_key": "x"}` (Ollama has no authentication) | `credentials accepted; llama3 is available` |
//! | `bedrock/anthropic.claude-3-sonnet-20240229-v1:0` | `BASE/bedrock` | `{"aws_access_key_id": "AKIDMODELREGTEST", "aws_secret_access_key": "bedrock-secret-for-tests"}` | `credentials accepted; anthropic.claude-3-sonnet-20240229-v1:0 is available` |
//!
//! The first row is the one to use unless a test is about a provider. Each message above was
//! read from a default `modelreg serve` probing this process.
//!
//! Fails (`"verified": false`, HTTP 200 all the same; a stored model becomes `ERROR` with the
//! message as `status_message`):
//!
//! | change from the first row | message contains |
//! |---|---|
//! | any other key, e.g. `{"api_key": "bad-key"}` | `rejected the credentials (HTTP 401)` |
//! | a model the fake does not list, e.g. `openai/gpt-5` | `credentials accepted, but gpt-5 is not among the 3 models openai lists` |
//! | `api_base` `BASE/fail` | `failed with HTTP 500` |
//! | `api_base` `BASE/garbage` | `not JSON` |
//! | `api_base` `BASE/nowhere` (any path the fake does not serve) | `has no model list at this path (HTTP 404)` |
//! | `api_base` `BASE/slow` with `"timeout": 1` on the model | `did not answer within 1.0 s (timeout)` (without `timeout` it takes the default 10 s) |
//! | `api_base` `BASE/to-metadata` | `resolves only to denied addresses`: its redirect to 169.254.169.254 is not followed |
//! | `api_base` `http://127.0.0.1:1/v1` (nothing listens) | `connection refused by 127.0.0.1` |
//!
//! `api_base` `BASE/hop` (any key as in the first row) passes through a redirect on the same
//! host. Verification does not need a saved model: `POST /assets/models/verify` takes the
//! same body as a create.

use std::io::Write;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let addr = modelreg_probe::testing::start().await;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}").expect("write to stdout");
    stdout.flush().expect("flush stdout");
    drop(stdout);
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
