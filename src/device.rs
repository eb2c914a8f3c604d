//! `--device auto|cpu|cuda|cuda:N`.

use crate::error::user;
use tch::Device;

/// Parses a device name; `auto` picks the first CUDA device when libtorch sees one.
pub fn parse_device(name: &str) -> anyhow::Result<Device> {
    let name = name.trim().to_ascii_lowercase();
    let device = match name.as_str() {
        "auto" => Device::cuda_if_available(),
        "cpu" => Device::Cpu,
        "cuda" | "gpu" => cuda(0)?,
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => cuda(i)?,
            _ => {
                return Err(user(format!(
                    "--device {other:?} is not a device: use auto, cpu, cuda or cuda:N"
                )))
            }
        },
    };
    Ok(device)
}

fn cuda(index: usize) -> anyhow::Result<Device> {
    let count = tch::Cuda::device_count() as usize;
    if index >= count {
        return Err(user(format!(
            "--device cuda:{index} asked for, but libtorch sees {count} CUDA device(s): use --device cpu or auto"
        )));
    }
    Ok(Device::Cuda(index))
}

/// A short, stable name for run.json and summaries.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}
