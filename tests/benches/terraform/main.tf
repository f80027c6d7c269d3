# examples/petclinic/environments/prod/*.yaml as Terraform sees it, for the `terraform` part of
# tests/benches/plan.rs: applied once to the AWS emulator (moto on loopback), then planned.
#
# The names and settings are tierdeck's own (tierdeck-<group>-cpu-out/-in policies, -high/-low
# alarms, the schedule's action names), so tierdeck reads the state this applies as its own.
# Like `tierdeck sandbox up`: one VPC with two subnets (ap-northeast-2a, -2c), a launch
# template `<group>-lt` per group; the database stays in the default VPC (the spec ties no
# security group to it, nor to the groups' instances).

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

variable "endpoint" {
  description = "The emulator (loopback only)."
  type        = string
  validation {
    condition     = can(regex("^http://(127\\.[0-9.]+|localhost)(:[0-9]+)?/?$", var.endpoint))
    error_message = "The endpoint must be a loopback address."
  }
}

variable "ami" {
  description = "A machine image the emulator offers."
  type        = string
}

provider "aws" {
  region                      = "ap-northeast-2"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  skip_requesting_account_id  = true
  max_retries                 = 1
  endpoints {
    autoscaling = var.endpoint
    cloudwatch  = var.endpoint
    ec2         = var.endpoint
    iam         = var.endpoint
    rds         = var.endpoint
    sts         = var.endpoint
  }
}

locals {
  # autoscaling.yaml
  groups = {
    "petclinic-prod-web" = {
      min = 2, max = 8, desired = 2, instance_type = "t3.medium"
      scale_out_above = 50, scale_in_below = 30, adjustment = 1, cooldown_seconds = 300
      schedule = {
        "web-night"     = { cron = "0 0 * * *", min = 2, max = 8, desired = 2 }
        "web-business"  = { cron = "0 9 * * *", min = 2, max = 8, desired = 2 }
        "web-prescale"  = { cron = "50 18 * * *", min = 3, max = 4, desired = 4 }
        "web-peak"      = { cron = "0 19 * * *", min = 4, max = 6, desired = null }
        "web-wind-down" = { cron = "0 22 * * *", min = 2, max = 3, desired = null }
      }
    }
    "petclinic-prod-was" = {
      min = 2, max = 8, desired = 2, instance_type = "t3.medium"
      scale_out_above = 50, scale_in_below = 30, adjustment = 1, cooldown_seconds = 300
      schedule = {
        "was-night"     = { cron = "0 0 * * *", min = 2, max = 8, desired = 2 }
        "was-business"  = { cron = "0 9 * * *", min = 2, max = 8, desired = 2 }
        "was-prescale"  = { cron = "50 18 * * *", min = 3, max = 5, desired = 5 }
        "was-peak"      = { cron = "0 19 * * *", min = 5, max = 7, desired = null }
        "was-wind-down" = { cron = "0 22 * * *", min = 2, max = 3, desired = null }
      }
    }
  }
  timezone = "Asia/Seoul"

  # One scaling policy and one alarm per direction and group.
  directions = {
    out = { alarm = "high", sign = 1, comparison = "GreaterThanOrEqualToThreshold", symbol = "≥" }
    in  = { alarm = "low", sign = -1, comparison = "LessThanOrEqualToThreshold", symbol = "≤" }
  }
  scaling = merge([
    for g, s in local.groups : {
      for d, v in local.directions : "${g}/${d}" => merge(v, {
        group      = g
        policy     = "tierdeck-${g}-cpu-${d}"
        alarm_name = "tierdeck-${g}-cpu-${v.alarm}"
        adjustment = v.sign * s.adjustment
        cooldown   = s.cooldown_seconds
        threshold  = d == "out" ? s.scale_out_above : s.scale_in_below
      })
    }
  ]...)
  schedule = merge([
    for g, s in local.groups : {
      for name, a in s.schedule : name => merge(a, { group = g })
    }
  ]...)

  # security.yaml: the chain internet → ext ALB → web → int ALB → was → db.
  security_groups = {
    "petclinic-prod-ext-alb-sg" = [
      { port = 443, cidr = "0.0.0.0/0", from_group = null, description = "HTTPS from CloudFront" },
      { port = 80, cidr = "0.0.0.0/0", from_group = null, description = "HTTP, redirected to HTTPS" },
    ]
    "petclinic-prod-web-sg" = [
      { port = 80, cidr = null, from_group = "petclinic-prod-ext-alb-sg", description = "from the external ALB" },
    ]
    "petclinic-prod-int-alb-sg" = [
      { port = 80, cidr = null, from_group = "petclinic-prod-web-sg", description = "from the web tier" },
    ]
    "petclinic-prod-was-sg" = [
      { port = 8080, cidr = null, from_group = "petclinic-prod-int-alb-sg", description = "from the internal ALB" },
    ]
    "petclinic-prod-db-sg" = [
      { port = 3306, cidr = null, from_group = "petclinic-prod-was-sg", description = "MySQL from the was tier" },
    ]
  }
}

resource "aws_vpc" "prod" {
  cidr_block = "10.0.0.0/16"
  tags       = { Name = "tierdeck-sandbox-prod" }
}

resource "aws_subnet" "prod" {
  for_each          = { a = "10.0.1.0/24", c = "10.0.2.0/24" }
  vpc_id            = aws_vpc.prod.id
  cidr_block        = each.value
  availability_zone = "ap-northeast-2${each.key}"
}

resource "aws_launch_template" "group" {
  for_each      = local.groups
  name          = "${each.key}-lt"
  image_id      = var.ami
  instance_type = each.value.instance_type
}

resource "aws_autoscaling_group" "group" {
  for_each            = local.groups
  name                = each.key
  min_size            = each.value.min
  max_size            = each.value.max
  desired_capacity    = each.value.desired
  vpc_zone_identifier = [for s in aws_subnet.prod : s.id]
  # tierdeck does not wait for instances in a plan or an apply of capacity either.
  wait_for_capacity_timeout = "0"
  launch_template {
    name    = aws_launch_template.group[each.key].name
    version = "$Latest"
  }
}

resource "aws_autoscaling_policy" "cpu" {
  for_each               = local.scaling
  name                   = each.value.policy
  autoscaling_group_name = aws_autoscaling_group.group[each.value.group].name
  policy_type            = "SimpleScaling"
  adjustment_type        = "ChangeInCapacity"
  scaling_adjustment     = each.value.adjustment
  cooldown               = each.value.cooldown
  # moto answers DescribePolicies without `Enabled` and with an empty predictive scaling
  # block, which Terraform would "fix" on every plan; AWS answers with neither quirk.
  lifecycle {
    ignore_changes = [enabled, predictive_scaling_configuration]
  }
}

resource "aws_cloudwatch_metric_alarm" "cpu" {
  for_each            = local.scaling
  alarm_name          = each.value.alarm_name
  alarm_description   = "tierdeck: average CPU of ${each.value.group} ${each.value.symbol} ${each.value.threshold} % calls its scaling policy"
  namespace           = "AWS/EC2"
  metric_name         = "CPUUtilization"
  dimensions          = { AutoScalingGroupName = each.value.group }
  statistic           = "Average"
  unit                = "Percent"
  period              = 300
  evaluation_periods  = 1
  threshold           = each.value.threshold
  comparison_operator = each.value.comparison
  alarm_actions       = [aws_autoscaling_policy.cpu[each.key].arn]
}

resource "aws_autoscaling_schedule" "action" {
  for_each               = local.schedule
  scheduled_action_name  = each.key
  autoscaling_group_name = aws_autoscaling_group.group[each.value.group].name
  recurrence             = each.value.cron
  time_zone              = local.timezone
  min_size               = each.value.min
  max_size               = each.value.max
  # -1: the action leaves desired capacity alone (the spec gives none).
  desired_capacity = coalesce(each.value.desired, -1)
}

# Inline rules: the group's ingress is exactly these (a stray rule is revoked, as tierdeck
# does); egress is AWS's default, kept (Terraform would drop it otherwise), as tierdeck leaves
# egress alone. A group's rules name their source group by id, so each group is its own
# resource and the chain orders their creation.
resource "aws_security_group" "ext_alb" {
  name        = "petclinic-prod-ext-alb-sg"
  description = "petclinic-prod-ext-alb-sg (tierdeck sandbox)"
  vpc_id      = aws_vpc.prod.id
  dynamic "ingress" {
    for_each = local.security_groups["petclinic-prod-ext-alb-sg"]
    content {
      protocol    = "tcp"
      from_port   = ingress.value.port
      to_port     = ingress.value.port
      cidr_blocks = [ingress.value.cidr]
      description = ingress.value.description
    }
  }
  egress {
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "web" {
  name        = "petclinic-prod-web-sg"
  description = "petclinic-prod-web-sg (tierdeck sandbox)"
  vpc_id      = aws_vpc.prod.id
  dynamic "ingress" {
    for_each = local.security_groups["petclinic-prod-web-sg"]
    content {
      protocol        = "tcp"
      from_port       = ingress.value.port
      to_port         = ingress.value.port
      security_groups = [aws_security_group.ext_alb.id]
      description     = ingress.value.description
    }
  }
  egress {
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "int_alb" {
  name        = "petclinic-prod-int-alb-sg"
  description = "petclinic-prod-int-alb-sg (tierdeck sandbox)"
  vpc_id      = aws_vpc.prod.id
  dynamic "ingress" {
    for_each = local.security_groups["petclinic-prod-int-alb-sg"]
    content {
      protocol        = "tcp"
      from_port       = ingress.value.port
      to_port         = ingress.value.port
      security_groups = [aws_security_group.web.id]
      description     = ingress.value.description
    }
  }
  egress {
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "was" {
  name        = "petclinic-prod-was-sg"
  description = "petclinic-prod-was-sg (tierdeck sandbox)"
  vpc_id      = aws_vpc.prod.id
  dynamic "ingress" {
    for_each = local.security_groups["petclinic-prod-was-sg"]
    content {
      protocol        = "tcp"
      from_port       = ingress.value.port
      to_port         = ingress.value.port
      security_groups = [aws_security_group.int_alb.id]
      description     = ingress.value.description
    }
  }
  egress {
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "db" {
  name        = "petclinic-prod-db-sg"
  description = "petclinic-prod-db-sg (tierdeck sandbox)"
  vpc_id      = aws_vpc.prod.id
  dynamic "ingress" {
    for_each = local.security_groups["petclinic-prod-db-sg"]
    content {
      protocol        = "tcp"
      from_port       = ingress.value.port
      to_port         = ingress.value.port
      security_groups = [aws_security_group.was.id]
      description     = ingress.value.description
    }
  }
  egress {
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# database.yaml
resource "aws_db_instance" "db" {
  identifier              = "petclinic-prod-db"
  engine                  = "mysql"
  instance_class          = "db.t3.medium"
  multi_az                = true
  allocated_storage       = 20
  backup_retention_period = 7
  deletion_protection     = true
  username                = "petclinic"
  password                = "sandbox-only-password"
  skip_final_snapshot     = true
  # tierdeck modifies at once, not in the next maintenance window.
  apply_immediately = true
}
