//! `complaint-ledger health`: asks a server's standard gRPC health service
//! whether it serves, and says so in its exit code — the container's
//! HEALTHCHECK and a Kubernetes exec probe. The health service is public, so
//! no token is needed; TLS settings still apply.
//!
//! The empty service name (the default) is the server as a whole: SERVING
//! once the ledger is open and every service is registered, NOT_SERVING from
//! the first moment of a shutdown. `--service complaint_ledger.v1.Ledger`
//! asks for one service.

use super::client::ServerArgs;
use anyhow::bail;
use std::time::Duration;
use tonic_health::pb::{health_check_response::ServingStatus, HealthCheckRequest};

/// Checks once, within `timeout`; `Ok` only when the answer is SERVING.
pub async fn check(server: &ServerArgs, service: &str, timeout: Duration) -> anyhow::Result<()> {
    let ask = async {
        let connection = server.connect().await?;
        let answer = connection
            .health()
            .check(HealthCheckRequest {
                service: service.to_string(),
            })
            .await
            .map_err(super::client::explain)?
            .into_inner();
        anyhow::Ok(answer.status())
    };
    let status = match tokio::time::timeout(timeout, ask).await {
        Ok(s) => s?,
        Err(_) => bail!(
            "{} did not answer within {:.1} s",
            server.server_url(),
            timeout.as_secs_f64()
        ),
    };
    let what = if service.is_empty() {
        "server"
    } else {
        service
    };
    match status {
        ServingStatus::Serving => {
            println!("{what}: SERVING");
            Ok(())
        }
        other => bail!("{what}: {}", other.as_str_name()),
    }
}
