"""How far the humanoid's servos lag a real walk's joint angles, and how much a velocity lead would take off.

The humanoid's hinges are driven by MuJoCo position servos (humanoid.py) that damp the joint's own
speed, so a joint moving at a steady speed lags its target by kv / kp (0.1 s) times that speed. A
tracking policy has to make that up with its actions; aiming each target ahead by a lead times the
reference's velocity would make the servo a PD on the error in angle and speed instead (tried for
the tracking environment and not adopted: benchmarks/RESULTS.md, "Servo lag"). This measures the
servos alone: the root is held on the clip's path and floor contact is off, the hinges are driven
at the clip's angles plus each lead in --leads (seconds) times the clip's hinge velocity, and the
hinge angles and the toes' heights are compared with the clip's after every control step.

Run from the repository root:
    python benchmarks/servo_lag.py --data datasets/cmu_walk.h5:0
"""

from __future__ import annotations

import argparse


def servo_lag(motion: str, leads: list[float]) -> None:
    import numpy as np

    from myocli import skeleton as sk
    from myocli.data.motion_input import load_motion
    from myocli.gl import load_mujoco
    from myocli.rl import humanoid as hu
    from myocli.rl import reference as rf

    mujoco = load_mujoco()
    source = load_motion(motion)
    reference = rf.build(source.motion, source.fps or 20.0, motion)
    model = hu.load_model()
    model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
    data = mujoco.MjData(model)
    substeps = int(round(reference.dt / model.opt.timestep))
    toes = list(sk.TOE_JOINTS)
    toe_sites = hu.site_ids(model)[toes]
    print(f"{motion}: {len(reference)} control steps of {reference.dt * 1000:.0f} ms")
    for lead in leads:
        mujoco.mj_resetData(model, data)
        data.qpos[:], data.qvel[:] = reference.qpos[0], reference.qvel[0]
        hinge_errors, toe_errors = [], []
        for t in range(1, len(reference)):
            data.ctrl[:] = reference.qpos[t, 7:] + lead * reference.qvel[t, 6:]
            for _ in range(substeps):
                data.qpos[:7], data.qvel[:6] = reference.qpos[t, :7], 0.0  # the root held on the clip's path
                mujoco.mj_step(model, data)
            hinge_errors.append(np.abs(data.qpos[7:] - reference.qpos[t, 7:]))
            toe_errors.append(data.site_xpos[toe_sites, 2] - reference.sites[t, toes, 2])
        hinges, heights = np.degrees(np.array(hinge_errors)), 1000 * np.array(toe_errors)
        print(f"lead {lead:.2f} s: hinge error mean {hinges.mean():.2f} deg (99th percentile {np.percentile(hinges, 99):.1f}); "
              f"toe height, simulated - clip: mean {heights.mean():+.1f} mm, mean absolute {np.abs(heights).mean():.1f} mm, "
              f"lowest {heights.min():.1f} mm")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a motion: FILE.h5:INDEX or .npy")
    parser.add_argument("--leads", type=float, nargs="+", default=[0.0, 0.05, 0.1], help="leads to compare, seconds")
    args = parser.parse_args()
    from myocli.errors import MyoError

    try:
        servo_lag(args.data, args.leads)
    except MyoError as exc:  # bad input: one line, as the myo commands give it
        parser.exit(1, f"Error: {exc}\n")


if __name__ == "__main__":
    main()
